import assert from "node:assert/strict";
import { test } from "node:test";
import { createBatchEncoder } from "../api/batch-encoder.ts";
import { rowsAsCopyText } from "./batch-layout.ts";

const ID = "3f1c0d3e-0000-4000-8000-000000000001";

test("each row's data is cut from its line as COPY text, backslashes escaped", () => {
  const encoder = createBatchEncoder(ID, ["a", 'b"\\']);
  encoder.start(1);
  encoder.row(1, ["x", "tab\there, new\nline"]);
  encoder.row(2, ["back\\slash", ""]);
  encoder.error({ row: 3, line: 4, code: "FieldCount", message: "a\nb", raw: "" });
  const batch = encoder.finish();
  assert.deepEqual(JSON.parse(batch.toString()).rows.length, 2, "the batch is still plain JSON");
  const lines = rowsAsCopyText(ID, batch).toString().split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[2], "");
  // What PostgreSQL reads from COPY text: \\ stands for one backslash.
  const fields = (line: string) => line.split("\t").map((f) => f.replaceAll("\\\\", "\\"));
  const [id, row, data] = fields(lines[0] as string);
  assert.equal(id, ID);
  assert.equal(row, "1");
  assert.deepEqual(JSON.parse(data as string), { a: "x", 'b"\\': "tab\there, new\nline" });
  assert.deepEqual(JSON.parse(fields(lines[1] as string)[2] as string), {
    a: "back\\slash",
    'b"\\': "",
  });
});

test("a batch without rows gives no COPY text", () => {
  const encoder = createBatchEncoder(ID, ["a"]);
  encoder.start(1);
  encoder.error({ row: 1, line: 2, code: "NulByte", message: "NUL", raw: "" });
  assert.equal(rowsAsCopyText(ID, encoder.finish()).length, 0);
});
