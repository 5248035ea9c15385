// The size of an upload's stored batches (UPLOAD_DIR) against the CSV's, for files of
// different shapes: what api.uploads must hold. Runs the api's own reader, batch cutter and
// frames on the same bytes, without services. Usage: node bench/spool-size.bench.ts
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBatchCutter, frameOf, type SpooledBatch } from "../src/api/intake/batch-spool.ts";
import { createCsvReader } from "../src/api/intake/csv/csv-reader.ts";
import { generateCsv } from "./generate-csv.ts";

const ROWS = 200_000;
const BATCH_SIZE = 1_000;
const CHUNK = 64 * 1024;

function spooledBytes(csv: Buffer): number {
  const cutter = createBatchCutter("00000000-0000-4000-8000-000000000000", BATCH_SIZE);
  const reader = createCsvReader(
    { maxColumns: 512, maxFieldBytes: 128 * 1024, maxRowBytes: 1024 * 1024 },
    cutter.sink,
  );
  let bytes = 0;
  const count = (batches: SpooledBatch[]) => {
    for (const batch of batches) {
      for (const part of frameOf(batch)) bytes += part.length;
    }
  };
  for (let at = 0; at < csv.length; at += CHUNK) {
    reader.push(csv.subarray(at, at + CHUNK));
    count(cutter.take());
  }
  reader.end();
  count(cutter.end());
  return bytes;
}

function lines(header: string, row: (i: number) => string): Buffer {
  const rows = [header];
  for (let i = 1; i <= ROWS; i++) rows.push(row(i));
  return Buffer.from(`${rows.join("\n")}\n`);
}

const dir = mkdtempSync(join(tmpdir(), "sluice-spool-size-"));
try {
  const benchmarkFile = join(dir, "benchmark.csv");
  await generateCsv(benchmarkFile, ROWS);
  const shapes: [string, Buffer][] = [
    ["npm run bench's file: an id and ten typed columns", readFileSync(benchmarkFile)],
    ["an id and one small number", lines("id,amount", (i) => `${i},${i % 1000}`)],
    [
      "an id and five short words",
      lines("id,a,b,c,d,e", (i) => `${i},alpha,beta,${i % 97},delta,x${i % 13}`),
    ],
    [
      "an id and two 100-character texts",
      lines("id,title,body", (i) => `${i},${"t".repeat(100)},${"b".repeat(99)}${i % 10}`),
    ],
  ];
  console.log(
    `| file (${ROWS.toLocaleString("en")} rows) | bytes per row | CSV | stored batches | ratio |`,
  );
  console.log("| --- | --- | --- | --- | --- |");
  for (const [name, csv] of shapes) {
    const stored = spooledBytes(csv);
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    console.log(
      `| ${name} | ${Math.round(csv.length / ROWS)} | ${mb(csv.length)} | ${mb(stored)} | ${(stored / csv.length).toFixed(2)} |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
