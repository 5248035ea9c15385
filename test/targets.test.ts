// Targets over HTTP on the real PostgreSQL: a tenant defines its typed tables, every bad
// definition is a 422 naming its problems, and a tenant sees and writes only its own.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { apiKeys, callApi, stackForTests } from "./support/stack.ts";
import { upsertById } from "./support/target-definitions.ts";

const KEYS = { acme: "acme-5c1e7a", globex: "globex-0d93b4" };
type Tenant = keyof typeof KEYS;

const stack = stackForTests({ API_KEYS: apiKeys(KEYS) }, { worker: false });

/** A call as `tenant`; a body that is not text yet goes as JSON. */
const call = (
  tenant: Tenant,
  method: string,
  path: string,
  body?: unknown,
  type = "application/json",
) =>
  callApi(
    stack.api.url,
    method,
    path,
    body === undefined || typeof body === "string" ? body : JSON.stringify(body),
    { key: KEYS[tenant], type },
  );

const people = {
  ...upsertById("people", [
    { name: "zip", type: "text", header: "Zip code" },
    { name: "born", type: "date", format: "DD/MM/YYYY" },
    { name: "score", type: "numeric", default: "0" },
  ]),
  ignore: ["notes"],
};

async function columnsOf(schema: string, table: string) {
  const { rows } = await stack.env.sql.query(
    `select attname as name, format_type(atttypid, atttypmod) as type from pg_attribute
     where attrelid = $1::regclass and attnum > 0 and not attisdropped order by attnum`,
    [`"${schema}"."${table}"`],
  );
  return rows.map((r) => `${r.name} ${r.type}`);
}

describe("defining a target", () => {
  test("PUT makes the table in the tenant's schema; GET and the list show it; a second PUT is version 2", async () => {
    const made = await call("acme", "PUT", "/targets/people", people);
    assert.equal(made.status, 201, made.text);
    assert.equal(made.headers.get("location"), "/targets/people");
    assert.equal(made.body.schema, "tenant_acme");
    assert.equal(made.body.tableCreated, true);
    assert.equal(made.body.version, 1);
    assert.deepEqual(await columnsOf("tenant_acme", "people"), [
      "id bigint",
      "zip text",
      "born date",
      "score numeric",
    ]);
    const { rows } = await stack.env.sql.query(
      `select conname from pg_constraint where conrelid = '"tenant_acme"."people"'::regclass and contype = 'p'`,
    );
    assert.equal(rows.length, 1, "the key is the primary key");

    const got = await call("acme", "GET", "/targets/people");
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.columns[1].header, "Zip code");
    assert.equal(got.body.columns[0].header, "id");
    assert.equal(got.body.columns[0].required, true, "a key column is required");
    const list = await call("acme", "GET", "/targets");
    assert.deepEqual(
      list.body.items.map((t: { name: string }) => t.name),
      ["people"],
    );

    const again = await call("acme", "PUT", "/targets/people", { ...people, mode: "skip" });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.version, 2);
    assert.equal(again.body.mode, "skip");
    assert.equal(again.body.tableCreated, false);
  });

  const BAD: [string, unknown, RegExp][] = [
    ["not an object", [1, 2], /JSON object/],
    ["no table", { columns: [{ name: "a", type: "text" }] }, /table must be a string/],
    [
      "a table name with a dot",
      { table: "public.uploads", columns: [{ name: "a", type: "text" }] },
      /table must be 1 to 63 lower-case/,
    ],
    [
      "a quoted column name",
      { table: "t", columns: [{ name: 'a"; drop table x; --', type: "text" }] },
      /columns\[0\]\.name must be/,
    ],
    ["no columns", { table: "t", columns: [] }, /columns must be a non-empty array/],
    ["an unknown type", { table: "t", columns: [{ name: "a", type: "money" }] }, /type must be/],
    [
      "an unknown mode",
      { table: "t", mode: "merge", columns: [{ name: "a", type: "text" }] },
      /mode must be/,
    ],
    [
      "upsert without a key",
      { table: "t", mode: "upsert", columns: [{ name: "a", type: "text" }] },
      /needs a key/,
    ],
    [
      "a key that is not a column",
      { table: "t", mode: "skip", key: ["b"], columns: [{ name: "a", type: "text" }] },
      /key column b is not among/,
    ],
    [
      "a column twice",
      {
        table: "t",
        columns: [
          { name: "a", type: "text" },
          { name: "a", type: "integer" },
        ],
      },
      /defined twice/,
    ],
    [
      "a header mapped twice",
      {
        table: "t",
        columns: [
          { name: "a", type: "text", header: "x" },
          { name: "b", type: "text", header: "x" },
        ],
      },
      /mapped to two columns/,
    ],
    [
      "a format on an integer",
      { table: "t", columns: [{ name: "a", type: "integer", format: "YYYY" }] },
      /format is for date and timestamptz/,
    ],
    [
      "a date format without a day",
      { table: "t", columns: [{ name: "a", type: "date", format: "YYYY-MM" }] },
      /format lacks DD/,
    ],
    [
      "a format with a letter",
      { table: "t", columns: [{ name: "a", type: "date", format: "YYYY-MM-DDx" }] },
      /format holds "x"/,
    ],
    [
      "a default that does not convert",
      { table: "t", columns: [{ name: "a", type: "integer", default: "1,5" }] },
      /the default of column a is not an integer/,
    ],
    [
      "an unknown time zone",
      {
        table: "t",
        columns: [
          { name: "a", type: "timestamptz", format: "YYYY-MM-DD HH:MI", timeZone: "Mars/Base" },
        ],
      },
      /no time zone Mars\/Base/,
    ],
    [
      "an unknown field",
      { table: "t", columns: [{ name: "a", type: "text", nullable: true }] },
      /unknown field "nullable"/,
    ],
    [
      "another tenant's schema",
      { table: "t", schema: "tenant_globex", columns: [{ name: "a", type: "text" }] },
      /schema must be tenant_acme/,
    ],
    [
      "an ignored header that is mapped",
      { table: "t", columns: [{ name: "a", type: "text" }], ignore: ["a"] },
      /ignore\[0\] "a" is mapped/,
    ],
  ];
  for (const [what, body, problem] of BAD) {
    test(`a definition with ${what} is 422 InvalidTarget naming it, and nothing is made`, async () => {
      const answer = await call("acme", "PUT", "/targets/bad", body);
      assert.equal(answer.status, 422, answer.text);
      assert.equal(answer.body.error.code, "InvalidTarget");
      assert.ok(
        answer.body.error.details.problems.some((p: string) => problem.test(p)),
        answer.text,
      );
      assert.equal((await call("acme", "GET", "/targets/bad")).status, 404);
      const { rows } = await stack.env.sql.query("select to_regclass('tenant_acme.t') as t");
      assert.equal(rows[0].t, null);
    });
  }

  test("every problem of a definition is named together", async () => {
    const answer = await call("acme", "PUT", "/targets/bad", {
      table: "T",
      mode: "upsert",
      columns: [{ name: "a", type: "money" }],
    });
    assert.equal(answer.status, 422, answer.text);
    assert.equal(answer.body.error.details.problems.length, 3, answer.text);
  });

  test("a body that is not JSON, not sent as JSON, too large, or a bad name is refused", async () => {
    assert.equal((await call("acme", "PUT", "/targets/x", "{", "application/json")).status, 422);
    const text = await call("acme", "PUT", "/targets/x", JSON.stringify(people), "text/plain");
    assert.equal(text.status, 415, text.text);
    const huge = await call("acme", "PUT", "/targets/x", {
      ...people,
      pad: "x".repeat(300 * 1024),
    });
    assert.equal(huge.status, 413, huge.text);
    for (const name of ["Upper", "-dash", "a.b", "x".repeat(64)]) {
      const answer = await call("acme", "PUT", `/targets/${name}`, people);
      assert.equal(answer.status, 400, `${name}: ${answer.text}`);
      assert.equal(answer.body.error.code, "InvalidParameter");
    }
  });

  test("an existing table is held to the definition: types, the key's unique index, NOT NULL columns", async () => {
    await stack.env.sql.query("create schema if not exists tenant_acme");
    await stack.env.sql.query(
      "create table tenant_acme.orders (id integer, amount text, placed date not null)",
    );
    const wrong = await call("acme", "PUT", "/targets/orders", {
      table: "orders",
      mode: "upsert",
      key: ["id"],
      columns: [
        { name: "id", type: "integer" },
        { name: "amount", type: "numeric" },
        { name: "missing", type: "text" },
      ],
    });
    assert.equal(wrong.status, 422, wrong.text);
    const problems = wrong.body.error.details.problems.join("\n");
    assert.match(problems, /column amount of table orders is text, not numeric/);
    assert.match(problems, /table orders has no column missing/);
    assert.match(problems, /column placed of table orders is NOT NULL without a default/);
    assert.match(problems, /no unique index on exactly \(id\), which upsert needs/);
    // The table's columns as they are; insert with a key tells the rows whose key is taken
    // by that index too.
    const fitting = {
      table: "orders",
      key: ["id"],
      columns: [
        { name: "id", type: "integer" },
        { name: "amount", type: "text" },
        { name: "placed", type: "date" },
      ],
    };
    const inserting = await call("acme", "PUT", "/targets/orders", fitting);
    assert.equal(inserting.status, 422, inserting.text);
    assert.match(
      inserting.body.error.details.problems.join("\n"),
      /no unique index on exactly \(id\), which insert needs/,
    );

    await stack.env.sql.query("alter table tenant_acme.orders add primary key (id)");
    const right = await call("acme", "PUT", "/targets/orders", { ...fitting, mode: "upsert" });
    assert.equal(right.status, 201, right.text);
    assert.equal(right.body.tableCreated, false);
  });

  test("DELETE forgets the target and leaves its table", async () => {
    await call("acme", "PUT", "/targets/gone", {
      table: "gone",
      columns: [{ name: "a", type: "text" }],
    });
    const deleted = await call("acme", "DELETE", "/targets/gone");
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal((await call("acme", "GET", "/targets/gone")).status, 404);
    assert.equal((await call("acme", "DELETE", "/targets/gone")).status, 404);
    const { rows } = await stack.env.sql.query("select to_regclass('tenant_acme.gone') as t");
    assert.notEqual(rows[0].t, null);
  });
});

describe("tenants", () => {
  test("a tenant cannot see, change or delete another's target, and its own lands in its own schema", async () => {
    const acme = await call("acme", "PUT", "/targets/shared-name", {
      table: "things",
      columns: [{ name: "a", type: "text" }],
    });
    assert.equal(acme.status, 201, acme.text);
    assert.equal((await call("globex", "GET", "/targets/shared-name")).status, 404);
    assert.equal((await call("globex", "DELETE", "/targets/shared-name")).status, 404);
    const list = await call("globex", "GET", "/targets");
    assert.deepEqual(list.body.items, []);

    const globex = await call("globex", "PUT", "/targets/shared-name", {
      table: "things",
      columns: [{ name: "b", type: "integer" }],
    });
    assert.equal(globex.status, 201, globex.text);
    assert.equal(globex.body.schema, "tenant_globex");
    assert.deepEqual(await columnsOf("tenant_acme", "things"), ["a text"]);
    assert.deepEqual(await columnsOf("tenant_globex", "things"), ["b integer"]);
    assert.equal((await call("acme", "GET", "/targets/shared-name")).body.columns[0].name, "a");
  });
});
