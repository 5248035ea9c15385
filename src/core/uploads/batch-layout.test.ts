import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { createBatchEncoder } from "../../api/intake/batch-encoder.ts";
import { rowsAsCopyText } from "./batch-layout.ts";

const ID = "3f1c0d3e-0000-4000-8000-000000000001";

/** What PostgreSQL reads from a line of COPY text: three fields, \\ standing for a backslash. */
function copyFields(line: string): string[] {
  return line.split("\t").map((f) => f.replaceAll("\\\\", "\\"));
}

function batchOf(columns: string[], rows: string[][]): Buffer {
  const encoder = createBatchEncoder(ID, columns);
  encoder.start(1);
  rows.forEach((values, i) => {
    encoder.row(i + 1, values);
  });
  return encoder.finish();
}

test("each row becomes a keyed object in COPY text, columns in the file's order", () => {
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
  const [id, row, data] = copyFields(lines[0] as string);
  assert.equal(id, ID);
  assert.equal(row, "1");
  assert.deepEqual(Object.entries(JSON.parse(data as string)), [
    ["a", "x"],
    ['b"\\', "tab\there, new\nline"],
  ]);
  assert.deepEqual(JSON.parse(copyFields(lines[1] as string)[2] as string), {
    a: "back\\slash",
    'b"\\': "",
  });
});

test("escaped quotes and backslashes next to the separators do not split a value", () => {
  const values = ['","', '\\",\\"', "\\", '"', "ends with \\", '\\"', "\u2028\u0001é東"];
  const columns = values.map((_, i) => `c${i}`);
  const [line] = rowsAsCopyText(ID, batchOf(columns, [values]))
    .toString()
    .split("\n");
  assert.deepEqual(Object.values(JSON.parse(copyFields(line as string)[2] as string)), values);
});

test("any columns and values come back exactly", () => {
  const text = fc.string({ unit: "binary", maxLength: 12 });
  fc.assert(
    fc.property(
      fc.uniqueArray(text, { minLength: 1, maxLength: 5 }).chain((columns) =>
        fc.tuple(
          fc.constant(columns),
          fc.array(fc.array(text, { minLength: columns.length, maxLength: columns.length }), {
            maxLength: 4,
          }),
        ),
      ),
      ([columns, rows]) => {
        const lines = rowsAsCopyText(ID, batchOf(columns, rows)).toString().split("\n");
        assert.equal(lines.length, rows.length + 1);
        rows.forEach((values, i) => {
          const data = JSON.parse(copyFields(lines[i] as string)[2] as string);
          assert.deepEqual(
            columns.map((c) => Object.getOwnPropertyDescriptor(data, c)?.value),
            values,
          );
        });
      },
    ),
    { numRuns: 500 },
  );
});

test("a row with too few or too many values is refused, not landed", () => {
  const good = batchOf(["a", "b"], [["1", "2"]]).toString();
  for (const bad of ['{"row":1,"values":["1"]}', '{"row":1,"values":["1","2","3"]}']) {
    const batch = Buffer.from(good.replace('{"row":1,"values":["1","2"]}', bad));
    assert.throws(() => rowsAsCopyText(ID, batch), /batch row line 1 is malformed/);
  }
});

test("a batch without rows gives no COPY text", () => {
  const encoder = createBatchEncoder(ID, ["a"]);
  encoder.start(1);
  encoder.error({ row: 1, line: 2, code: "NulByte", message: "NUL", raw: "" });
  assert.equal(rowsAsCopyText(ID, encoder.finish()).length, 0);
});
