// Rows per second of the CSV reader against csv-parse producing arrays, on the same bytes.
import { parse } from "csv-parse";
import { parse as parseSync } from "csv-parse/sync";
import { createCsvReader } from "../src/api/intake/csv/csv-reader.ts";

const ROWS = 200_000;
const CHUNK = 64 * 1024;
const RUNS = 5;

function generate(): Buffer {
  const lines = ["id,name,city,note,amount,date,flag,code,email,comment"];
  for (let i = 0; i < ROWS; i++) {
    lines.push(
      [
        i,
        `"Doe, Jane ${i % 977}"`,
        "Zürich",
        `"said ""hello"", then left"`,
        (i * 1.37).toFixed(2),
        "2024-05-17",
        i % 2 === 0 ? "true" : "false",
        `C${i % 10_000}`,
        `user${i}@example.com`,
        `"a, b, c and ${i}"`,
      ].join(","),
    );
  }
  return Buffer.from(`${lines.join("\r\n")}\r\n`);
}

function chunks(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += CHUNK) parts.push(bytes.subarray(at, at + CHUNK));
  return parts;
}

function sluice(parts: Buffer[]): number {
  let rows = 0;
  const reader = createCsvReader(
    { maxColumns: 512, maxFieldBytes: 128 * 1024, maxRowBytes: 1024 * 1024 },
    {
      header() {},
      row() {
        rows++;
      },
      rowError() {
        throw new Error("unexpected row error");
      },
    },
  );
  for (const part of parts) reader.push(part);
  reader.end();
  return rows;
}

function csvParseStream(parts: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let records = 0;
    const parser = parse();
    parser.on("data", () => {
      records++;
    });
    parser.on("end", () => resolve(records - 1));
    parser.on("error", reject);
    for (const part of parts) parser.write(part);
    parser.end();
  });
}

function csvParseSync(bytes: Buffer): number {
  return parseSync(bytes).length - 1;
}

async function measure(
  name: string,
  run: () => number | Promise<number>,
  bytes: number,
): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const rows = await run();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
    if (rows !== ROWS) throw new Error(`${name} read ${rows} rows, expected ${ROWS}`);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(RUNS / 2)] as number;
  const rowsPerSecond = Math.round(ROWS / median).toLocaleString("en-US");
  const mbPerSecond = (bytes / 1024 / 1024 / median).toFixed(1);
  console.log(
    `${name.padEnd(32)} ${rowsPerSecond.padStart(12)} rows/s  ${mbPerSecond.padStart(7)} MiB/s (median of ${RUNS})`,
  );
}

const bytes = generate();
const parts = chunks(bytes);
console.log(
  `${ROWS} rows x 10 columns, ${(bytes.length / 1024 / 1024).toFixed(1)} MiB, ${CHUNK / 1024} KiB chunks`,
);
await measure("sluice createCsvReader", () => sluice(parts), bytes.length);
await measure("csv-parse stream (arrays)", () => csvParseStream(parts), bytes.length);
await measure("csv-parse/sync (arrays)", () => csvParseSync(bytes), bytes.length);
