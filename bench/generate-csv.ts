// Writes the benchmark's CSV file: an id and ten typed columns, the awkward cases of real
// exports included (quoted commas and doubled quotes, empty strings, leading-zero codes),
// streamed to disk a block of rows at a time and the same for a given row count.
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";

export const CSV_COLUMNS = [
  "id",
  "quantity",
  "price",
  "ordered_on",
  "updated_at",
  "active",
  "name",
  "code",
  "comment",
  "description",
  "note",
] as const;

/** The same columns as a PostgreSQL table, for the COPY and pgloader baselines. */
export function tableDdl(table: string): string {
  return `create table ${table} (
    id bigint primary key,
    quantity integer not null,
    price numeric(12, 2) not null,
    ordered_on date not null,
    updated_at timestamptz not null,
    active boolean not null,
    name text not null,
    code text not null,
    comment text,
    description text not null,
    note text not null
  )`;
}

const FIRST = ["Jane", "John", "Ana", "Li", "Zoë", "Omar", "Chloé", "Ivan", "Mia", "Noah"];
const LAST = ["Doe", "Smith", "García", "Nguyen", "Müller", "O'Brien", "Rossi", "Kowalski"];
const WORDS = [
  "shipment",
  "arrived",
  "late",
  "customer",
  "requested",
  "refund",
  "invoice",
  "attached",
  "warehouse",
  "Zürich",
  "pallet",
  "damaged",
  "priority",
  "order",
  "confirmed",
  "by",
  "phone",
];
const COMMENTS = ["ok", "checked", "urgent", "see note", "n/a"];
const DAY_MS = 86_400_000;
const EPOCH_2000 = Date.UTC(2000, 0, 1);
const ROWS_PER_WRITE = 2_000;

/** A small seeded generator (mulberry32): the same file on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function rowMaker(seed: number): (id: number) => string {
  const next = random(seed);
  const int = (below: number) => Math.floor(next() * below);
  const pick = <T>(values: readonly T[]) => values[int(values.length)] as T;
  const words = (count: number) => Array.from({ length: count }, () => pick(WORDS)).join(" ");
  return (id) => {
    const quantity = int(100_000) - 500;
    const price = (int(10_000_000) / 100).toFixed(2);
    const orderedOn = new Date(EPOCH_2000 + int(9_000) * DAY_MS).toISOString().slice(0, 10);
    const updatedAt = new Date(EPOCH_2000 + int(9_000 * DAY_MS)).toISOString();
    const active = next() < 0.5 ? "true" : "false";
    const name = `${pick(FIRST)} ${pick(LAST)}`;
    const code = String(int(10_000_000)).padStart(8, "0");
    const comment = next() < 0.3 ? "" : pick(COMMENTS);
    const description =
      next() < 0.25 ? `"${words(2)}, ${words(2)}, ${words(1)}"` : words(2 + int(4));
    const note = `"said ""${pick(WORDS)}"", ${int(100)} times"`;
    return `${id},${quantity},${price},${orderedOn},${updatedAt},${active},"${name}",${code},${comment},${description},${note}\n`;
  };
}

/** Writes `rows` data rows after the header line; returns the file's size in bytes. */
export async function generateCsv(path: string, rows: number): Promise<number> {
  const out = createWriteStream(path);
  const row = rowMaker(20_261_128);
  let bytes = 0;
  const write = async (text: string) => {
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, "drain");
  };
  await write(`${CSV_COLUMNS.join(",")}\n`);
  for (let id = 1; id <= rows; ) {
    let block = "";
    for (const last = Math.min(rows, id + ROWS_PER_WRITE - 1); id <= last; id++) block += row(id);
    await write(block);
  }
  out.end();
  await finished(out);
  return bytes;
}
