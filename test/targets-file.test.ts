// TARGETS_FILE: targets defined in a file (as a ConfigMap mounts one) are applied with the
// migrations; the same file again changes nothing, and a bad one stops the program naming
// every problem.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import { createLogger } from "../src/core/logger.ts";
import { openDatabase } from "../src/core/program/services.ts";
import { type TestEnv, testEnv } from "./support/stack.ts";
import { upsertById } from "./support/target-definitions.ts";

const log = createLogger("test", "silent");
let env: TestEnv;
let dir: string;
before(async () => {
  env = await testEnv();
  dir = await mkdtemp(join(tmpdir(), "sluice-targets-file-"));
});
after(async () => {
  await env?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

const people = upsertById("people", [{ name: "name", type: "text" }]);

/** Opens the database as a program does with TARGETS_FILE holding `content`. */
async function start(content: string) {
  const path = join(dir, `targets-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, content);
  const { db } = await openDatabase(loadConfig({ ...env.env, TARGETS_FILE: path }), log);
  await db.destroy();
}

async function targets() {
  const { rows } = await env.sql.query(
    "select tenant, name, schema_name, version, definition ->> 'mode' as mode from targets order by tenant, name",
  );
  return rows;
}

test("the file's targets are made with their tables; the same file again leaves them as they are; a change is a new version", async () => {
  const file = { acme: { people }, globex: { orders: { ...people, table: "orders" } } };
  await start(JSON.stringify(file));
  assert.deepEqual(await targets(), [
    { tenant: "acme", name: "people", schema_name: "tenant_acme", version: 1, mode: "upsert" },
    { tenant: "globex", name: "orders", schema_name: "tenant_globex", version: 1, mode: "upsert" },
  ]);
  const { rows } = await env.sql.query(
    "select to_regclass('tenant_acme.people') is not null as people, to_regclass('tenant_globex.orders') is not null as orders",
  );
  assert.deepEqual(rows[0], { people: true, orders: true });

  await start(JSON.stringify(file));
  assert.deepEqual(
    (await targets()).map((t) => t.version),
    [1, 1],
  );

  await start(JSON.stringify({ ...file, acme: { people: { ...people, mode: "skip" } } }));
  assert.deepEqual(
    (await targets()).map((t) => [t.name, t.version, t.mode]),
    [
      ["people", 2, "skip"],
      ["orders", 1, "upsert"],
    ],
  );
});

test("a file with problems stops the program naming each one, and applies nothing", async () => {
  const bad = {
    acme: {
      "Bad.Name": people,
      fresh: { ...people, table: "fresh", mode: "merge" },
    },
    initech: [people],
  };
  await assert.rejects(start(JSON.stringify(bad)), (err: Error) => {
    assert.match(err.message, /TARGETS_FILE .* is not valid/);
    assert.match(err.message, /acme\/Bad\.Name: not a target's name/);
    assert.match(err.message, /acme\/fresh: mode must be one of insert, upsert, skip/);
    assert.match(err.message, /initech: must be an object of targets by name/);
    return true;
  });
  await assert.rejects(start("{"), /is not JSON/);
  const { rows } = await env.sql.query(
    "select count(*)::int as n from targets where name = 'fresh'",
  );
  assert.equal(rows[0].n, 0);
});

test("a target whose table does not fit stops the program, naming it", async () => {
  await env.sql.query("create table tenant_acme.ledger (id text primary key)");
  const file = { acme: { ledger: { ...people, table: "ledger" } } };
  await assert.rejects(
    start(JSON.stringify(file)),
    /acme\/ledger: column id of table ledger is text, not bigint/,
  );
});
