import assert from "node:assert/strict";
import { test } from "node:test";
import { parseTargetDefinition, type TargetSnapshot, tenantSchema } from "./target-definition.ts";
import { planHeader, valueCheck } from "./target-values.ts";

const CASES: Record<string, { format?: string; good: string[]; bad: string[] }> = {
  integer: {
    good: ["0", "-7", "+12", "007", "2147483647", "-2147483648"],
    bad: ["1,5", "1.5", "1e3", " 1", "2147483648", "-2147483649", "one", "0x10"],
  },
  bigint: {
    good: ["9223372036854775807", "-9223372036854775808", "0012"],
    bad: ["9223372036854775808", "1,000", "12.0"],
  },
  numeric: {
    good: ["1.5", "-0.25", ".5", "5.", "+3", "0001.10", `1.${"5".repeat(16383)}`],
    bad: ["1,5", "1.000,5", "1 000", "1e5", "NaN", "$5", ".", `1.${"5".repeat(16384)}`],
  },
  boolean: {
    good: ["true", "FALSE", "t", "f", "yes", "No", "y", "n", "1", "0"],
    bad: ["on", "2", "vrai", "truee"],
  },
  date: {
    good: ["2026-02-01", "2024-02-29", "0001-01-01"],
    bad: ["01/02/2026", "2026-2-1", "2026-02-30", "2025-02-29", "2026-13-01", "0000-01-01"],
  },
  "date DD/MM/YYYY": {
    format: "DD/MM/YYYY",
    good: ["01/02/2026", "31/12/1999"],
    bad: ["2026-02-01", "1/2/2026", "32/01/2026", "01/13/2026"],
  },
  timestamptz: {
    good: [
      "2026-02-01T10:00:00Z",
      "2026-02-01T23:59:59+02:00",
      "2026-02-01T00:00:00-0530",
      "2026-02-01T00:00:00+14",
    ],
    bad: [
      "2026-02-01 10:00:00Z",
      "2026-02-01T24:00:00Z",
      "2026-02-01T10:00:00",
      "2026-02-01",
      "2026-02-01T10:00:00+15",
      "2026-02-01T10:00:00-02:60",
      "2026-02-30T10:00:00Z",
    ],
  },
  "timestamptz YYYY-MM-DDTHH:MI:SS.FFTZ": {
    format: "YYYY-MM-DDTHH:MI:SS.FFTZ",
    good: ["2000-01-01T00:00:00.000Z", "2026-02-01T10:00:00.123456+05:30"],
    bad: ["2026-02-01T10:00:00.1234567Z", "2026-02-01T10:00:00.5+15:00", "2026-02-01T10:61:00.5Z"],
  },
  // A field after one of varying width: its place is not fixed.
  "timestamptz SS.FF DD/MM/YYYY HH:MI": {
    format: "SS.FF DD/MM/YYYY HH:MI",
    good: ["05.123 01/02/2026 10:30", "59.1 29/02/2024 23:59"],
    bad: ["05.123 30/02/2026 10:30", "60.1 01/02/2026 10:30", "05.1 01/02/2026 24:00"],
  },
  "timestamptz DD.MM.YYYY HH:MI": {
    format: "DD.MM.YYYY HH:MI",
    good: ["01.02.2026 10:30"],
    bad: ["01/02/2026 10:30", "01.02.2026 10:60"],
  },
  uuid: {
    good: ["0b5c2f9e-1d3a-4c8e-9f70-2a6b8d4e1c3f", "0B5C2F9E-1D3A-4C8E-9F70-2A6B8D4E1C3F"],
    bad: ["0b5c2f9e1d3a4c8e9f702a6b8d4e1c3f", "{0b5c2f9e-1d3a-4c8e-9f70-2a6b8d4e1c3f}", "x"],
  },
  jsonb: {
    good: ['{"a":1}', "[1,2]", '"text"', "3.5", "null"],
    bad: [
      "{a:1}",
      "'x'",
      '{"a":"\\u0000"}',
      '"\\ud800"',
      "1e99999",
      `${"[".repeat(200)}${"]".repeat(200)}`,
    ],
  },
};

for (const [name, { format, good, bad }] of Object.entries(CASES)) {
  const type = name.split(" ")[0] as "integer";
  const defaults = { date: "YYYY-MM-DD", timestamptz: "YYYY-MM-DDTHH:MI:SSTZ" } as Record<
    string,
    string
  >;
  const check = valueCheck({ type, format: format ?? defaults[type] });
  test(`${name}: each good value converts, each bad one is refused with a reason`, () => {
    assert.deepEqual(
      good.filter((v) => check(v) !== undefined),
      [],
    );
    assert.deepEqual(
      bad.filter((v) => check(v) === undefined),
      [],
    );
  });
}

test("text keeps every value, leading zeros and all", () => {
  const check = valueCheck({ type: "text" });
  for (const v of ["01234", "1,5", " padded ", "\u00e9"]) assert.equal(check(v), undefined);
});

function snapshot(raw: unknown): TargetSnapshot {
  const parsed = parseTargetDefinition(raw, "tenant_t");
  if ("problems" in parsed) throw new Error(parsed.problems.join("; "));
  return {
    ...parsed.definition,
    name: "t",
    schema: "tenant_t",
    version: 1,
    notNull: parsed.definition.key,
  };
}

test("a header is planned against the mapping: missing required and unmapped names, then each row's first problem", () => {
  const target = snapshot({
    table: "t",
    mode: "upsert",
    key: ["id"],
    columns: [
      { name: "id", type: "integer" },
      { name: "amount", type: "numeric", header: "Amount" },
      { name: "zip", type: "text", required: true },
      { name: "n", type: "integer", default: "0" },
    ],
    ignore: ["notes"],
  });
  const lacking = planHeader(target, ["Amount", "notes", "extra"]);
  assert.deepEqual(lacking.missing, ["id", "zip"]);
  assert.deepEqual(lacking.unmapped, ["extra"]);

  const plan = planHeader(target, ["id", "Amount", "zip", "n", "notes"]);
  assert.deepEqual(plan.missing, []);
  assert.deepEqual(plan.unmapped, []);
  assert.equal(plan.check(["1", "1.5", "01234", "", "x"]), undefined);
  assert.deepEqual(plan.check(["1", "1,5", "z", "2", ""]), {
    code: "InvalidValue",
    message:
      'column amount (header "Amount"): "1,5" is not a numeric (digits, with "." before any decimals; no thousands separator)',
  });
  assert.deepEqual(plan.check(["", "1", "z", "2", ""]), {
    code: "MissingValue",
    message: "column id is empty and has no default",
  });
  assert.equal(plan.check(["1", "", "z", "", ""]), undefined, "empty is NULL or the default");
  assert.deepEqual(plan.check(["1", "", "", "", ""])?.code, "MissingValue");
});

test("ignoreOthers takes any header name", () => {
  const target = snapshot({
    table: "t",
    columns: [{ name: "a", type: "text" }],
    ignoreOthers: true,
  });
  assert.deepEqual(planHeader(target, ["a", "b", "c"]).unmapped, []);
});

test("each tenant's schema is its own, and cannot be spelled by another tenant's name", () => {
  assert.equal(tenantSchema("acme"), "tenant_acme");
  assert.equal(tenantSchema("default"), "tenant_default");
  const odd = ["Acme", "acme corp", 'a"b', "x".repeat(60)].map(tenantSchema);
  for (const schema of odd) assert.match(schema, /^tenant_[0-9a-f]{24}$/);
  assert.equal(new Set(odd).size, odd.length);
});
