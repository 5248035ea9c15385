// Uploads into a target on the real services: typed rows in the tenant's own table, each
// value that does not convert a row error with its line, column and reason, the header
// checked before the 202, upsert and skip across uploads, insert meeting keys that exist,
// exactly once on redelivery, and a target changed while an upload into it runs.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type pg from "pg";
import { deliverAgain } from "./support/redelivery.ts";
import {
  apiKeys,
  callApi,
  getObjectJson,
  listBatchObjects,
  stackForTests,
  waitFor,
} from "./support/stack.ts";

const KEYS = { acme: "acme-2b7f11", globex: "globex-c4e8a0" };
type Tenant = keyof typeof KEYS;

const stack = stackForTests({ API_KEYS: apiKeys(KEYS), BATCH_SIZE: "3" });

const call = (tenant: Tenant, method: string, path: string, body?: string, type?: string) =>
  callApi(stack.api.url, method, path, body, { key: KEYS[tenant], type });

async function define(tenant: Tenant, name: string, definition: unknown) {
  const answer = await call(
    tenant,
    "PUT",
    `/targets/${name}`,
    JSON.stringify(definition),
    "application/json",
  );
  assert.ok(answer.status === 201 || answer.status === 200, answer.text);
  return answer.body;
}

async function upload(tenant: Tenant, target: string, csv: string) {
  return call(tenant, "POST", `/uploads?target=${target}`, csv, "text/csv");
}

async function completed(tenant: Tenant, id: string) {
  return waitFor(`upload ${id} to complete`, async () => {
    const { body } = await call(tenant, "GET", `/uploads/${id}`);
    if (body.status === "failed" || body.status === "rejected") {
      throw new Error(`upload ${id} is ${body.status}: ${JSON.stringify(body.error)}`);
    }
    return body.status === "completed" ? body : undefined;
  });
}

/** Uploads `csv` into the target, and waits for it to land; its id, and the upload then. */
async function landed(tenant: Tenant, target: string, csv: string) {
  const accepted = await upload(tenant, target, csv);
  assert.equal(accepted.status, 202, accepted.text);
  const id: string = accepted.body.id;
  return { id, done: await completed(tenant, id) };
}

/**
 * Uploads `csv` into acme's target while `table` is locked, so that its landing waits; runs
 * `meanwhile` on the locking session before the lock goes, and gives the upload's id.
 */
async function uploadWhileLocked(
  target: string,
  table: string,
  csv: string,
  meanwhile: (lock: pg.PoolClient) => Promise<void>,
): Promise<string> {
  const lock = await stack.env.sql.connect();
  try {
    await lock.query("begin");
    await lock.query(`lock table tenant_acme.${table} in exclusive mode`);
    const accepted = await upload("acme", target, csv);
    assert.equal(accepted.status, 202, accepted.text);
    await meanwhile(lock);
    await lock.query("commit");
    return accepted.body.id;
  } finally {
    lock.release();
  }
}

const FOUR_ROWS = "id,name\n1,a\n2,b\n3,c\n4,d\n";
const FOUR_LANDED = [
  { id: 1, name: "a" },
  { id: 2, name: "b" },
  { id: 3, name: "c" },
  { id: 4, name: "d" },
];

async function errorsOf(tenant: Tenant, id: string) {
  const { text } = await call(tenant, "GET", `/uploads/${id}/errors`);
  return text.trimEnd().split("\n").slice(1);
}

async function rows(query: string) {
  return (await stack.env.sql.query(query)).rows;
}

describe("every type, with good and bad values", () => {
  test("typed rows land in the table; each bad value is a row error naming its line, column and reason; the rest of the batch lands", async () => {
    await define("acme", "typed", {
      table: "typed",
      columns: [
        { name: "n", type: "integer" },
        { name: "big", type: "bigint" },
        { name: "amount", type: "numeric" },
        { name: "ok", type: "boolean" },
        { name: "day", type: "date" },
        { name: "eu_day", type: "date", format: "DD/MM/YYYY", header: "EU day" },
        { name: "at", type: "timestamptz", format: "YYYY-MM-DD HH:MI", timeZone: "Europe/Paris" },
        { name: "id", type: "uuid" },
        { name: "doc", type: "jsonb" },
        { name: "zip", type: "text" },
        { name: "score", type: "numeric", default: "0" },
      ],
    });
    const header = "n,big,amount,ok,day,EU day,at,id,doc,zip,score";
    const uuid = "0b5c2f9e-1d3a-4c8e-9f70-2a6b8d4e1c3f";
    const good = (n: number, zip: string, extra = "") =>
      `${n},9007199254740993,12.50,yes,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},"{""a"":[1,2]}",${zip},${extra}`;
    const csv = [
      header,
      good(1, "01234"), // row 1, line 2: leading zeros kept
      `2,1,"1,5",t,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // row 2, line 3: 1,5
      `3,1,1.5,t,01/02/2026,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // 01/02/2026 in an ISO column
      `4,1,1.5,t,2026-02-01,2026-02-01,2026-07-01 12:30,${uuid},{},x,`, // ISO in a DD/MM column
      `,,,,,,,,,,`, // row 5, line 6: every value empty: NULLs and the default
      `"6\n",1,1.5,t,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // row 6, lines 7-8
      good(7, "007", "3.25"), // row 7, line 9
      `8,1,1.5,maybe,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // line 10
      `9,1,1.5,t,2026-02-30,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // line 11
      `10,1,1.5,t,2026-02-01,01/02/2026,2026-07-01 25:00,${uuid},{},x,`, // line 12
      `11,1,1.5,t,2026-02-01,01/02/2026,2026-07-01 12:30,not-a-uuid,{},x,`, // line 13
      `12,1,1.5,t,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{a:1},x,`, // line 14
      `13,99999999999999999999,1.5,t,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // line 15
      `2147483648,1,1.5,t,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{},x,`, // row 14, line 16
      `15,1,1.5,t,2026-02-01,01/02/2026,2026-07-01 12:30,${uuid},{},x,1e3`, // row 15, line 17
      "",
    ].join("\n");
    const accepted = await upload("acme", "typed", csv);
    assert.equal(accepted.status, 202, accepted.text);
    assert.equal(accepted.body.rows, 15);
    assert.equal(accepted.body.rowErrors, 12, "the bad values are counted before the 202");
    assert.deepEqual(accepted.body.target, { name: "typed", version: 1 });
    const done = await completed("acme", accepted.body.id);
    assert.equal(done.rowsLanded, 3);

    // What the columns before zip hold for a row made by good().
    const goodValues = {
      big: "9007199254740993",
      amount: "12.50",
      ok: true,
      day: "2026-02-01",
      eu_day: "2026-02-01",
      at: new Date("2026-07-01T10:30:00Z"),
      id: uuid,
      doc: { a: [1, 2] },
    };
    const landed = await rows(
      `select n, big::text, amount::text, ok, day::text, eu_day::text, at, id::text, doc, zip, score::text
       from tenant_acme.typed order by n nulls first`,
    );
    assert.deepEqual(landed, [
      {
        n: null,
        big: null,
        amount: null,
        ok: null,
        day: null,
        eu_day: null,
        at: null,
        id: null,
        doc: null,
        zip: null,
        score: "0",
      },
      { n: 1, ...goodValues, zip: "01234", score: "0" },
      { n: 7, ...goodValues, zip: "007", score: "3.25" },
    ]);
    // row,line,code,message
    assert.deepEqual(await errorsOf("acme", accepted.body.id), [
      '2,3,InvalidValue,"column amount: ""1,5"" is not a numeric (digits, with ""."" before any decimals; no thousands separator)"',
      '3,4,InvalidValue,"column day: ""01/02/2026"" does not match the format YYYY-MM-DD"',
      '4,5,InvalidValue,"column eu_day (header ""EU day""): ""2026-02-01"" does not match the format DD/MM/YYYY"',
      '6,7,InvalidValue,"column n: ""6\\n"" is not an integer"',
      '8,10,InvalidValue,"column ok: ""maybe"" is not a boolean (true, false, t, f, yes, no, y, n, 1 or 0)"',
      '9,11,InvalidValue,"column day: ""2026-02-30"" has day 30, and the month has 28"',
      '10,12,InvalidValue,"column at: ""2026-07-01 25:00"" has hour 25"',
      '11,13,InvalidValue,"column id: ""not-a-uuid"" is not a UUID"',
      '12,14,InvalidValue,"column doc: ""{a:1}"" is not JSON"',
      '13,15,InvalidValue,"column big: ""99999999999999999999"" is out of the range of bigint"',
      '14,16,InvalidValue,"column n: ""2147483648"" is out of the range of integer"',
      '15,17,InvalidValue,"column score: ""1e3"" is not a numeric (digits, with ""."" before any decimals; no thousands separator)"',
    ]);

    // The S3 batches hold the file's strings, as for any upload.
    const keys = await listBatchObjects(stack.env, accepted.body.id);
    const first = await getObjectJson(stack.env, keys[0] as string);
    assert.deepEqual(first.rows[0].values.slice(0, 6), [
      "1",
      "9007199254740993",
      "12.50",
      "yes",
      "2026-02-01",
      "01/02/2026",
    ]);
    assert.equal(first.errors[0].code, "InvalidValue");
  });
});

describe("the header, before the 202", () => {
  before(async () => {
    await define("acme", "people", {
      table: "people",
      mode: "upsert",
      key: ["id"],
      columns: [
        { name: "id", type: "integer" },
        { name: "name", type: "text", header: "Name", required: true },
        { name: "city", type: "text" },
      ],
      ignore: ["notes"],
    });
  });

  test("a file lacking required columns is 422 MissingColumns naming them, and nothing is queued", async () => {
    const answer = await upload("acme", "people", "city,notes\nParis,x\n");
    assert.equal(answer.status, 422, answer.text);
    assert.equal(answer.body.error.code, "MissingColumns");
    assert.deepEqual(answer.body.error.details.names, ["id", "Name"]);
    assert.match(answer.body.error.message, /"id", "Name"/);
    const status = await call("acme", "GET", `/uploads/${answer.body.error.details.uploadId}`);
    assert.equal(status.body.status, "rejected");
  });

  test("a header name neither mapped nor ignored is 422 UnmappedColumns", async () => {
    const answer = await upload("acme", "people", "id,Name,phone\n1,Ada,555\n");
    assert.equal(answer.status, 422, answer.text);
    assert.equal(answer.body.error.code, "UnmappedColumns");
    assert.deepEqual(answer.body.error.details.names, ["phone"]);
  });

  test("an unknown target, or a name that cannot be one, is refused before the body is read", async () => {
    const unknown = await upload("acme", "nope", "id\n1\n");
    assert.equal(unknown.status, 422, unknown.text);
    assert.equal(unknown.body.error.code, "UnknownTarget");
    const bad = await upload("acme", "Not.A.Name", "id\n1\n");
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.details.parameter, "target");
  });

  test("one tenant cannot upload into another's target, nor reach its table", async () => {
    const answer = await upload("globex", "people", "id,Name\n1,Mallory\n");
    assert.equal(answer.status, 422, answer.text);
    assert.equal(answer.body.error.code, "UnknownTarget");
    await define("globex", "people", {
      table: "people",
      columns: [
        { name: "id", type: "integer" },
        { name: "name", type: "text" },
      ],
    });
    await landed("globex", "people", "id,name\n1,Mallory\n");
    assert.deepEqual(await rows("select id, name from tenant_globex.people"), [
      { id: 1, name: "Mallory" },
    ]);
    assert.deepEqual(await rows("select * from tenant_acme.people where name = 'Mallory'"), []);
  });
});

describe("the file's columns and the table's", () => {
  before(async () => {
    await stack.env.sql.query(`
      create schema if not exists tenant_acme;
      create table tenant_acme.contacts (
        id integer primary key, name text, city text, country text default 'FR')`);
  });

  test("an ignored column is dropped; a column the header does not name takes its default, or else the table's", async () => {
    await define("acme", "contacts", {
      table: "contacts",
      columns: [
        { name: "id", type: "integer" },
        { name: "name", type: "text", header: "Name" },
        { name: "city", type: "text", default: "Paris" },
        { name: "country", type: "text" },
      ],
      ignore: ["notes"],
    });
    await landed("acme", "contacts", "id,notes,Name\n1,call back,Ada\n2,,Grace\n");
    assert.deepEqual(await rows("select * from tenant_acme.contacts order by id"), [
      { id: 1, name: "Ada", city: "Paris", country: "FR" },
      { id: 2, name: "Grace", city: "Paris", country: "FR" },
    ]);
  });

  test("ignoreOthers drops every header name the mapping does not know", async () => {
    const loose = await define("acme", "contacts-loose", {
      table: "contacts",
      columns: [
        { name: "id", type: "integer" },
        { name: "name", type: "text" },
      ],
      ignoreOthers: true,
    });
    assert.equal(loose.ignoreOthers, true);
    await landed("acme", "contacts-loose", "id,phone,name,fax\n3,555,Alan,556\n");
    assert.deepEqual(await rows("select * from tenant_acme.contacts where id = 3"), [
      { id: 3, name: "Alan", city: null, country: "FR" },
    ]);
  });
});

describe("load modes across two uploads", () => {
  const columns = [
    { name: "id", type: "integer" },
    { name: "name", type: "text" },
    { name: "visits", type: "integer" },
  ];
  const first = "id,name,visits\n1,Ada,1\n2,Grace,1\n3,Alan,1\n4,Edsger,1\n";
  // Batches of three rows: both rows of key 5 in the first.
  const second = "id,name,visits\n5,Barbara,2\n5,Barbara L.,3\n3,Alan T.,2\n4,,2\n";
  /** The table a target of `mode` holds after both files. */
  async function loadedTwice(mode: "upsert" | "skip") {
    await define("acme", `visits-${mode}`, { table: `visits_${mode}`, mode, key: ["id"], columns });
    for (const csv of [first, second]) await landed("acme", `visits-${mode}`, csv);
    return rows(`select * from tenant_acme.visits_${mode} order by id`);
  }

  test("upsert updates the rows whose key exists, inserts the others, the last row of a key winning", async () => {
    assert.deepEqual(await loadedTwice("upsert"), [
      { id: 1, name: "Ada", visits: 1 },
      { id: 2, name: "Grace", visits: 1 },
      { id: 3, name: "Alan T.", visits: 2 },
      { id: 4, name: null, visits: 2 },
      { id: 5, name: "Barbara L.", visits: 3 },
    ]);
  });

  test("skip leaves the rows whose key exists as they were", async () => {
    assert.deepEqual(await loadedTwice("skip"), [
      { id: 1, name: "Ada", visits: 1 },
      { id: 2, name: "Grace", visits: 1 },
      { id: 3, name: "Alan", visits: 1 },
      { id: 4, name: "Edsger", visits: 1 },
      { id: 5, name: "Barbara", visits: 2 },
    ]);
  });
});

describe("insert, and keys that exist", () => {
  test("a row whose key is in the table, or on another row of the file, is a DuplicateKey row error; the rest lands; a redelivered batch changes nothing", async () => {
    await define("acme", "members", {
      table: "members",
      key: ["id"],
      columns: [
        { name: "id", type: "integer" },
        { name: "name", type: "text" },
      ],
    });
    await landed("acme", "members", "id,name\n1,Ada\n2,Grace\n");

    // Batches of three rows.
    const csv = [
      "id,name",
      "3,Alan", // row 1, line 2
      "1,Ada again", // row 2, line 3: in the table
      "3,Alan again", // row 3, line 4: twice in the batch, after row 1
      '4,"Barbara\nLiskov"', // row 4, lines 5-6
      "3,Alan once more", // row 5, line 7: in another batch than rows 1 and 3
      "5,Edsger", // row 6, line 8
      "x,bad", // row 7, line 9: not an integer
      "6,Frances", // row 8, line 10
      ",Nobody", // row 9, line 11: a key must have a value
      "", // the file ends with a line break
    ].join("\n");
    const accepted = await upload("acme", "members", csv);
    assert.equal(accepted.status, 202, accepted.text);
    assert.equal(accepted.body.rows, 9);
    assert.equal(accepted.body.rowErrors, 2, "keys are found taken when the rows land, not before");
    const id = accepted.body.id;
    const done = await completed("acme", id);

    // Of the three rows of key 3, the first of its batch that lands first lands: row 1 or row 5.
    const table = await rows("select id, name from tenant_acme.members order by id");
    const three = table.find((r) => r.id === 3);
    assert.ok(three?.name === "Alan" || three?.name === "Alan once more", JSON.stringify(table));
    assert.deepEqual(
      table.filter((r) => r.id !== 3),
      [
        { id: 1, name: "Ada" },
        { id: 2, name: "Grace" },
        { id: 4, name: "Barbara\nLiskov" },
        { id: 5, name: "Edsger" },
        { id: 6, name: "Frances" },
      ],
    );
    const taken = (row: number, line: number, value: string) =>
      `${row},${line},DuplicateKey,"key (id) = (""${value}"") exists already, in the table or on another row of the file"`;
    const expected = [
      taken(2, 3, "1"),
      taken(3, 4, "3"),
      three?.name === "Alan" ? taken(5, 7, "3") : taken(1, 2, "3"),
      '7,9,InvalidValue,"column id: ""x"" is not an integer"',
      "9,11,MissingValue,column id is empty and has no default",
    ].sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    assert.deepEqual(await errorsOf("acme", id), expected);
    assert.equal(done.rowErrors, 5, "the upload counts the taken keys among its row errors");
    assert.equal(done.rowsLanded, 4, "and not among the rows landed");

    // The first batch again, as a redelivery: its own rows are not taken keys, nothing lands twice.
    await deliverAgain(stack, id, 1);
    assert.deepEqual(await rows("select id, name from tenant_acme.members order by id"), table);
    assert.deepEqual(await errorsOf("acme", id), expected);
    const again = await call("acme", "GET", `/uploads/${id}`);
    assert.equal(again.body.rowErrors, 5);
    assert.equal(again.body.rowsLanded, 4);
  });
});

describe("constraints of the table other than the key", () => {
  test("insert: a row that a unique index, a CHECK, a foreign key or NOT NULL refuses is a ConstraintViolation row error naming its line, columns and the constraint; the rest of its batch lands, once", async () => {
    await stack.env.sql.query(`
      create schema if not exists tenant_acme;
      create table tenant_acme.countries (code text primary key);
      insert into tenant_acme.countries values ('FR'), ('DE');
      create table tenant_acme.customers (
        id integer primary key,
        email text unique,
        age integer check (age >= 0),
        country text references tenant_acme.countries (code),
        name text);
      insert into tenant_acme.customers (id, email, name) values (100, 'old@x', 'Old')`);
    await define("acme", "customers", {
      table: "customers",
      key: ["id"],
      columns: [
        { name: "id", type: "integer" },
        { name: "email", type: "text" },
        { name: "age", type: "integer" },
        { name: "country", type: "text" },
        { name: "name", type: "text", header: "Full name" },
      ],
    });
    // After the definition, which records the table's NOT NULL columns: an empty name passes
    // the api's checks and meets the table's constraint when it lands.
    await stack.env.sql.query("alter table tenant_acme.customers alter column name set not null");

    // Batches of three rows.
    const csv = [
      "id,email,age,country,Full name",
      "1,a@x,30,FR,Ada", // row 1, line 2
      "2,a@x,31,FR,Grace", // row 2, line 3: the email of row 1
      "3,c@x,-1,DE,Alan", // row 3, line 4: the CHECK
      "4,d@x,40,XX,Edsger", // row 4, line 5: no such country
      "5,e@x,41,DE,Barbara", // row 5, line 6
      "5,f@x,42,DE,Barbara L.", // row 6, line 7: the key of row 5
      "7,g@x,43,DE,", // row 7, line 8: NOT NULL
      "8,old@x,44,DE,Frances", // row 8, line 9: an email in the table
      "9,i@x,45,,Niklaus", // row 9, line 10
      "10,j@x,46,FR,Ken", // rows 10 to 12: a batch the table takes whole
      "11,k@x,47,DE,Dennis",
      "12,l@x,48,FR,Bjarne",
      "",
    ].join("\n");
    const accepted = await upload("acme", "customers", csv);
    assert.equal(accepted.status, 202, accepted.text);
    assert.equal(accepted.body.rowErrors, 0, "constraints are met when the rows land");
    const id = accepted.body.id;
    const done = await completed("acme", id);
    assert.equal(done.rowsLanded, 6);
    assert.equal(done.rowErrors, 6);

    const table = await rows(
      "select id, email, age, country, name from tenant_acme.customers order by id",
    );
    assert.deepEqual(table, [
      { id: 1, email: "a@x", age: 30, country: "FR", name: "Ada" },
      { id: 5, email: "e@x", age: 41, country: "DE", name: "Barbara" },
      { id: 9, email: "i@x", age: 45, country: null, name: "Niklaus" },
      { id: 10, email: "j@x", age: 46, country: "FR", name: "Ken" },
      { id: 11, email: "k@x", age: 47, country: "DE", name: "Dennis" },
      { id: 12, email: "l@x", age: 48, country: "FR", name: "Bjarne" },
      { id: 100, email: "old@x", age: null, country: null, name: "Old" },
    ]);
    const expected = [
      '2,3,ConstraintViolation,"column email: duplicate key value violates unique constraint ""customers_email_key"". Key (email)=(a@x) already exists."',
      '3,4,ConstraintViolation,"column age: new row for relation ""customers"" violates check constraint ""customers_age_check"". Failing row contains (3, c@x, -1, DE, Alan)."',
      '4,5,ConstraintViolation,"column country: insert or update on table ""customers"" violates foreign key constraint ""customers_country_fkey"". Key (country)=(XX) is not present in table ""countries""."',
      '6,7,DuplicateKey,"key (id) = (""5"") exists already, in the table or on another row of the file"',
      '7,8,ConstraintViolation,"column name (header ""Full name""): null value in column ""name"" of relation ""customers"" violates not-null constraint. Failing row contains (7, g@x, 43, DE, null)."',
      '8,9,ConstraintViolation,"column email: duplicate key value violates unique constraint ""customers_email_key"". Key (email)=(old@x) already exists."',
    ];
    assert.deepEqual(await errorsOf("acme", id), expected);

    // Each batch again, as redeliveries: nothing lands twice, no row error is added.
    for (const seq of [1, 2, 3, 4]) await deliverAgain(stack, id, seq);
    assert.deepEqual(
      await rows("select id, email, age, country, name from tenant_acme.customers order by id"),
      table,
    );
    assert.deepEqual(await errorsOf("acme", id), expected);
    const again = await call("acme", "GET", `/uploads/${id}`);
    assert.equal(again.body.rowsLanded, 6);
    assert.equal(again.body.rowErrors, 6);
  });

  test("insert without a key: a row a unique index refuses is a row error; the others land (columns named n and line too)", async () => {
    await stack.env.sql.query(`
      create schema if not exists tenant_acme;
      create table tenant_acme.emails (email text unique, n integer, line text)`);
    await define("acme", "emails", {
      table: "emails",
      columns: [
        { name: "email", type: "text" },
        { name: "n", type: "integer" },
        { name: "line", type: "text" },
      ],
    });
    // Columns named n and line, as the staging table's own bookkeeping might be.
    const { id, done } = await landed(
      "acme",
      "emails",
      "email,n,line\na@x,1,one\na@x,2,two\nb@x,3,three\n",
    );
    assert.equal(done.rowsLanded, 2);
    assert.deepEqual(await rows("select email, n, line from tenant_acme.emails order by n"), [
      { email: "a@x", n: 1, line: "one" },
      { email: "b@x", n: 3, line: "three" },
    ]);
    assert.deepEqual(await errorsOf("acme", id), [
      '2,3,ConstraintViolation,"column email: duplicate key value violates unique constraint ""emails_email_key"". Key (email)=(a@x) already exists."',
    ]);
  });

  test("upsert: a row refused by a CHECK, or by a deferred foreign key at the commit, is a row error; the batch's other rows update or insert (a column named n too)", async () => {
    await stack.env.sql.query(`
      create schema if not exists tenant_acme;
      create table tenant_acme.teams (code text primary key);
      insert into tenant_acme.teams values ('red'), ('blue');
      create table tenant_acme.scores (
        id integer primary key,
        n integer check (n between 0 and 100),
        team text references tenant_acme.teams (code) deferrable initially deferred)`);
    await define("acme", "scores", {
      table: "scores",
      mode: "upsert",
      key: ["id"],
      columns: [
        { name: "id", type: "integer" },
        { name: "n", type: "integer" },
        { name: "team", type: "text" },
      ],
    });
    await landed("acme", "scores", "id,n,team\n1,10,red\n2,20,blue\n3,30,red\n");

    // Batches of three rows: the CHECK refuses row 2 in the first, the foreign key row 4 in
    // the second, only when it commits.
    const second = await landed(
      "acme",
      "scores",
      "id,n,team\n1,11,red\n2,200,blue\n3,33,red\n4,40,green\n5,50,blue\n",
    );
    assert.equal(second.done.rowsLanded, 3);
    assert.equal(second.done.rowErrors, 2);
    assert.deepEqual(await rows("select id, n, team from tenant_acme.scores order by id"), [
      { id: 1, n: 11, team: "red" },
      { id: 2, n: 20, team: "blue" },
      { id: 3, n: 33, team: "red" },
      { id: 5, n: 50, team: "blue" },
    ]);
    assert.deepEqual(await errorsOf("acme", second.id), [
      '2,3,ConstraintViolation,"column n: new row for relation ""scores"" violates check constraint ""scores_n_check"". Failing row contains (2, 200, blue)."',
      '4,5,ConstraintViolation,"column team: insert or update on table ""scores"" violates foreign key constraint ""scores_team_fkey"". Key (team)=(green) is not present in table ""teams""."',
    ]);
  });
});

test("a batch delivered twice lands its rows in the target once", async () => {
  // Insert without a key: a second landing of a batch would show as twice the rows.
  await define("acme", "log", {
    table: "log",
    columns: [
      { name: "seq", type: "integer" },
      { name: "what", type: "text" },
    ],
  });
  const { id } = await landed("acme", "log", "seq,what\n1,a\n2,b\n3,c\n4,d\n");
  await deliverAgain(stack, id, 1);
  assert.deepEqual(await rows("select seq, what from tenant_acme.log order by seq"), [
    { seq: 1, what: "a" },
    { seq: 2, what: "b" },
    { seq: 3, what: "c" },
    { seq: 4, what: "d" },
  ]);
});

test("a target changed while an upload into it runs: the upload lands by the definition it was accepted with", async () => {
  // The worker's landing waits on a lock of the first table, so the target changes between
  // the upload's 202 and the landing of its rows.
  await define("acme", "moving", {
    table: "moving_v1",
    columns: [
      { name: "id", type: "integer" },
      { name: "amount", type: "numeric", header: "Amount" },
    ],
  });
  const id = await uploadWhileLocked(
    "moving",
    "moving_v1",
    "id,Amount\n1,1.5\n2,2.5\n3,3.5\n4,4.5\n",
    async () => {
      const changed = await define("acme", "moving", {
        table: "moving_v2",
        columns: [
          { name: "id", type: "integer" },
          { name: "amount", type: "integer", header: "Total" },
        ],
      });
      assert.equal(changed.version, 2);
    },
  );
  const done = await completed("acme", id);
  assert.deepEqual(done.target, { name: "moving", version: 1 }, "the upload says which it used");
  assert.deepEqual(
    (await rows("select id, amount::text from tenant_acme.moving_v1 order by id")).map(
      (r) => `${r.id}:${r.amount}`,
    ),
    ["1:1.5", "2:2.5", "3:3.5", "4:4.5"],
  );
  assert.deepEqual(await rows("select * from tenant_acme.moving_v2"), []);
  // A file for the new definition lands by it.
  await landed("acme", "moving", "id,Total\n5,5\n");
  assert.deepEqual(await rows("select id, amount from tenant_acme.moving_v2"), [
    { id: 5, amount: 5 },
  ]);
});

test("a target deleted while an upload into it runs: the upload lands by its copy; the next upload finds no target", async () => {
  await define("acme", "vanishing", {
    table: "vanishing",
    columns: [
      { name: "id", type: "integer" },
      { name: "name", type: "text" },
    ],
  });
  // The landing waits on the table while the target goes.
  const id = await uploadWhileLocked("vanishing", "vanishing", FOUR_ROWS, async () => {
    const deleted = await call("acme", "DELETE", "/targets/vanishing");
    assert.equal(deleted.status, 204, deleted.text);
  });
  const done = await completed("acme", id);
  assert.deepEqual(done.target, { name: "vanishing", version: 1 });
  assert.equal(done.rowsLanded, 4);
  assert.deepEqual(
    await rows("select id, name from tenant_acme.vanishing order by id"),
    FOUR_LANDED,
  );
  const next = await upload("acme", "vanishing", "id,name\n5,e\n");
  assert.equal(next.status, 422, next.text);
  assert.equal(next.body.error.code, "UnknownTarget");
});

test("a table dropped under an upload fails it with PostgreSQL's reason; made again, a re-drive lands every row once", async () => {
  const definition = {
    table: "fragile",
    columns: [
      { name: "id", type: "integer" },
      { name: "name", type: "text" },
    ],
  };
  await define("acme", "fragile", definition);
  // The landing waits on the table, which goes before it can land.
  const id = await uploadWhileLocked("fragile", "fragile", FOUR_ROWS, async (lock) => {
    await lock.query("drop table tenant_acme.fragile");
  });
  const failed = await waitFor("the upload to fail", async () => {
    const { body } = await call("acme", "GET", `/uploads/${id}`);
    return body.status === "failed" ? body : undefined;
  });
  assert.match(failed.error.message, /fragile/, JSON.stringify(failed.error));

  // PUT makes the missing table again; the re-drive lands what had not landed.
  await define("acme", "fragile", definition);
  const redriven = await call("acme", "POST", `/uploads/${id}/redrive`);
  assert.equal(redriven.status, 200, redriven.text);
  await completed("acme", id);
  assert.deepEqual(await rows("select id, name from tenant_acme.fragile order by id"), FOUR_LANDED);
});
