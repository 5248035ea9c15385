import assert from "node:assert/strict";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  BATCH_TEXT_LIMIT,
  createBatchCutter,
  frameOf,
  readSpool,
  type SpooledBatch,
} from "./batch-spool.ts";
import { createCsvReader } from "./csv/csv-reader.ts";

const ID = "3f1c0d3e-0000-4000-8000-000000000001";
const dir = await mkdtemp(join(tmpdir(), "sluice-spool-"));
after(() => rm(dir, { recursive: true, force: true }));

const LIMITS = { maxColumns: 10, maxFieldBytes: 100, maxRowBytes: 400 };

function cut(csv: string, batchSize: number, chunk: number, limits = LIMITS): SpooledBatch[] {
  const cutter = createBatchCutter(ID, batchSize);
  const reader = createCsvReader(limits, cutter.sink);
  const batches: SpooledBatch[] = [];
  const bytes = Buffer.from(csv);
  for (let at = 0; at < bytes.length; at += chunk) {
    reader.push(bytes.subarray(at, at + chunk));
    batches.push(...cutter.take());
  }
  reader.end();
  batches.push(...cutter.end());
  return batches;
}

async function spool(name: string, batches: SpooledBatch[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.concat(batches.flatMap(frameOf)));
  return path;
}

async function readAll(path: string, afterSeq: number): Promise<SpooledBatch[]> {
  const read: SpooledBatch[] = [];
  for await (const batch of readSpool(path, afterSeq)) read.push(batch);
  return read;
}

test("records are cut into batches by record number, rejected ones counted where they fall", () => {
  const csv = "id,name\n1,a\n2,b\n3\n4,d\n5,e\n";
  for (const chunk of [1, 3, 1024]) {
    const batches = cut(csv, 2, chunk);
    assert.deepEqual(
      batches.map(({ seq, rows, rowErrors }) => ({ seq, rows, rowErrors })),
      [
        { seq: 1, rows: 2, rowErrors: 0 },
        { seq: 2, rows: 1, rowErrors: 1 },
        { seq: 3, rows: 1, rowErrors: 0 },
      ],
      `chunks of ${chunk}`,
    );
    const second = JSON.parse((batches[1] as SpooledBatch).body.toString());
    assert.deepEqual(second.rows, [{ row: 4, values: ["4", "d"] }]);
    assert.equal(second.errors[0].row, 3);
  }
});

test("wide rows close a batch before batchSize, once its JSON reaches the limit", () => {
  const value = "w".repeat(100_000);
  const rows = 50;
  const csv = `a,b,c\n${Array.from({ length: rows }, (_, i) => `${i},${value},${value}`).join("\n")}\n`;
  const limits = { maxColumns: 3, maxFieldBytes: 100_000, maxRowBytes: 1_000_000 };
  const batches = cut(csv, 1_000, 65_536, limits);
  // Each row is about 200 KB of JSON: a batch closes at the first row past the limit.
  const perBatch = Math.ceil(BATCH_TEXT_LIMIT / 200_000);
  assert.equal(batches.length, Math.ceil(rows / perBatch));
  assert.deepEqual(
    batches.map((b) => b.seq),
    batches.map((_, i) => i + 1),
  );
  const landed = batches.flatMap((b) => JSON.parse(b.body.toString()).rows);
  assert.deepEqual(
    landed.map((r: { row: number }) => r.row),
    Array.from({ length: rows }, (_, i) => i + 1),
  );
  for (const batch of batches) {
    assert.ok(batch.rows <= perBatch, `batch ${batch.seq} holds ${batch.rows} rows`);
  }
});

test("a spool reads back frame by frame, and from any batch on", async () => {
  const batches = cut(`id\n${Array.from({ length: 7 }, (_, i) => i + 1).join("\n")}\n`, 2, 5);
  const path = await spool("seven.batches", batches);
  assert.deepEqual(await readAll(path, 0), batches);
  assert.deepEqual(
    (await readAll(path, 2)).map((b) => b.seq),
    [3, 4],
  );
  assert.deepEqual(await readAll(path, 4), []);
});

test("a spool cut short says so instead of publishing part of a batch", async () => {
  const batches = cut("id\n1\n2\n3\n", 2, 1024);
  const path = await spool("short.batches", batches);
  await truncate(path, 16 + (batches[0] as SpooledBatch).body.length + 20);
  await assert.rejects(readAll(path, 0), { what: "ends inside batch 2" });
  await truncate(path, 10);
  await assert.rejects(readAll(path, 0), { what: "ends inside the header of batch 1" });
});

test("a spool whose frames are not numbered from 1 in order says so", async () => {
  const batches = cut("id\n1\n2\n3\n4\n5\n", 2, 1024);
  const [first, second, third] = batches as [SpooledBatch, SpooledBatch, SpooledBatch];
  const path = await spool("shuffled.batches", [first, third, second]);
  await assert.rejects(readAll(path, 0), { what: "holds batch 3 where batch 2 belongs" });
  // A frame whose length runs past the end of the file: nothing that large is allocated.
  const [header, body] = frameOf(first);
  header.writeUInt32BE(0xffffffff, 12);
  await writeFile(path, Buffer.concat([header, body]));
  await assert.rejects(readAll(path, 0), { what: "ends inside batch 1" });
});
