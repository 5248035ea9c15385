import assert from "node:assert/strict";
import { test } from "node:test";
import { createBatchEncoder } from "./batch-encoder.ts";

test("a batch is JSON naming the columns once, each row an array of the file's strings", () => {
  const encoder = createBatchEncoder("3f1c0d3e-0000-4000-8000-000000000001", [
    "id",
    "zip",
    "__proto__",
    'say "hi"',
  ]);
  encoder.start(2);
  encoder.row(1001, ["007", "", "x", 'line\nbreak "quoted"']);
  encoder.error({
    row: 1002,
    line: 1004,
    code: "FieldCount",
    message: "expected 4 fields, found 2",
    raw: "1002,x",
  });
  const batch = JSON.parse(encoder.finish().toString());
  assert.equal(batch.seq, 2);
  assert.deepEqual(batch.columns, ["id", "zip", "__proto__", 'say "hi"']);
  assert.equal(batch.rows.length, 1);
  assert.equal(batch.rows[0].row, 1001);
  assert.deepEqual(batch.rows[0].values, ["007", "", "x", 'line\nbreak "quoted"']);
  assert.deepEqual(batch.errors, [
    { row: 1002, line: 1004, code: "FieldCount", message: "expected 4 fields, found 2" },
  ]);
});

test("starting a batch forgets the previous one", () => {
  const encoder = createBatchEncoder("3f1c0d3e-0000-4000-8000-000000000001", ["a"]);
  encoder.start(1);
  encoder.row(1, ["x"]);
  encoder.start(2);
  assert.equal(encoder.rows(), 0);
  assert.deepEqual(JSON.parse(encoder.finish().toString()).rows, []);
});
