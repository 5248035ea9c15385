import assert from "node:assert/strict";
import { test } from "node:test";
import { createBatchEncoder } from "../../api/intake/batch-encoder.ts";
import { batchHead, stagingTable, targetCopy } from "./target-copy.ts";
import type { TargetSnapshot } from "./target-definition.ts";

const target = (columns: TargetSnapshot["columns"]): TargetSnapshot => ({
  name: "t",
  schema: "tenant_acme",
  version: 1,
  notNull: [],
  table: "t",
  mode: "insert",
  key: [],
  columns,
  ignore: [],
  ignoreOthers: true,
});

function batch(columns: string[], rows: [number, string[], number?][]): Buffer {
  const encoder = createBatchEncoder("3f1c0d3e-0000-4000-8000-000000000001", columns);
  encoder.start(1);
  for (const [row, values, line] of rows) encoder.row(row, values, line);
  return encoder.finish();
}

test("each target column takes its value by its place in the header, as COPY text", () => {
  const copy = targetCopy(
    target([
      { name: "id", type: "integer", header: "id", required: true },
      { name: "zip", type: "text", header: "Zip code", required: false },
      { name: "score", type: "numeric", header: "score", required: false, default: "0" },
      { name: "absent", type: "text", header: "absent", required: false },
      { name: "origin", type: "text", header: "origin", required: false, default: "a\\b" },
    ]),
    batchHead(batch(["Zip code", "notes", "id", "score"], [])),
  );
  assert.deepEqual(
    copy.columns.map((c) => c.name),
    ["id", "zip", "score", "origin"],
    "a column neither in the header nor with a default is left to the table",
  );
  const body = batch(
    ["Zip code", "notes", "id", "score"],
    [
      [1, ["007", "x", "1", "2.5"]],
      [2, ["", "x", "2", ""]],
      [3, ['say "hi"\t\\ \n\r/', "x", "3", "1"]],
      [4, ["bell\u0007 nul-free \u001f é 😀", "x", "4", "1"]],
    ],
  );
  assert.equal(
    copy.text(body, false).toString(),
    [
      "1\t007\t2.5\ta\\\\b",
      "2\t\\N\t0\ta\\\\b",
      '3\tsay "hi"\\t\\\\ \\n\\r/\t1\ta\\\\b',
      "4\tbell\u0007 nul-free \u001f é 😀\t1\ta\\\\b",
      "",
    ].join("\n"),
  );
});

test("dates in other formats are rewritten as ISO 8601, and zone names follow local times", () => {
  const copy = targetCopy(
    target([
      { name: "day", type: "date", header: "day", required: false, format: "DD/MM/YYYY" },
      {
        name: "at",
        type: "timestamptz",
        header: "at",
        required: false,
        format: "DD.MM.YYYY HH:MI",
        timeZone: "Europe/Paris",
      },
      {
        name: "iso",
        type: "timestamptz",
        header: "iso",
        required: false,
        format: "YYYY-MM-DDTHH:MI:SS.FFTZ",
      },
      {
        name: "since",
        type: "date",
        header: "since",
        required: false,
        format: "DD/MM/YYYY",
        default: "01/02/2026",
      },
    ]),
    batchHead(batch(["day", "at", "iso", "since"], [])),
  );
  const body = batch(
    ["day", "at", "iso", "since"],
    [[1, ["31/12/2025", "01.07.2026 12:30", "2026-07-01T10:30:00.000Z", ""]]],
  );
  assert.equal(
    copy.text(body, false).toString(),
    "2025-12-31\t2026-07-01 12:30:00 Europe/Paris\t2026-07-01T10:30:00.000Z\t2026-02-01\n",
  );
});

test("numbered rows carry their number and the line the api kept for them", () => {
  // Row 2 spans lines 3 and 4, and a blank line comes before row 4.
  const body = batch(
    ["id"],
    [
      [1, ["1"], 2],
      [2, ["2"], 3],
      [3, ["3"], 5],
      [4, ["4"], 7],
      [5, ["5"], 8],
    ],
  );
  const copy = targetCopy(
    target([{ name: "id", type: "integer", header: "id", required: true }]),
    batchHead(body),
  );
  assert.deepEqual(JSON.parse(body.toString()).lines, [
    [1, 2],
    [3, 5],
    [4, 7],
  ]);
  assert.equal(copy.text(body, true).toString(), "1\t2\t1\n2\t3\t2\n3\t5\t3\n4\t7\t4\n5\t8\t5\n");
});

test("a malformed batch row is refused", () => {
  const copy = targetCopy(
    target([{ name: "id", type: "integer", header: "id", required: true }]),
    batchHead(batch(["id"], [])),
  );
  const good = batch(["id"], [[1, ["1"]]]).toString();
  assert.throws(
    () => copy.text(Buffer.from(good.replace('"values":["1"]', '"values":["1"')), false),
    /malformed/,
  );
  assert.throws(
    () => copy.text(Buffer.from(good.replace('"values":["1"]', '"values":["1",]')), false),
    /malformed/,
  );
});

test("a staging table is named by its columns and types; its own columns cannot be a target's", () => {
  const one = targetCopy(
    target([{ name: "id", type: "integer", header: "id", required: true }]),
    batchHead(batch(["id"], [])),
  );
  const other = targetCopy(
    target([{ name: "id", type: "bigint", header: "id", required: true }]),
    batchHead(batch(["id"], [])),
  );
  assert.notEqual(stagingTable(one).name, stagingTable(other).name);
  assert.match(
    stagingTable(one).create,
    /^create temp table if not exists sluice_stage_[0-9a-f]{20} \(sluice\$row bigint, sluice\$line bigint, "id" integer\) on commit delete rows$/,
  );
});
