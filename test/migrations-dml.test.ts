// Migrations run apart from the programs (the chart's migration Job, `npm run migrate`),
// and the programs then run as a user with the DML rights docs/kubernetes.md grants; with
// CREATE_BUCKET the migration, or a program migrating at start, makes the bucket too.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { loadConfig } from "../src/core/config.ts";
import { createLogger } from "../src/core/logger.ts";
import { openDatabase, openStorage } from "../src/core/program/services.ts";
import { bucketExists } from "../src/core/storage/s3.ts";
import { DOCUMENTED_PASSWORD, documentedGrants } from "./support/database-users.ts";
import { startProgram } from "./support/program.ts";
import { callApi, startInProcess, type TestEnv, testEnv, waitFor } from "./support/stack.ts";

const log = createLogger("test", "silent");
let env: TestEnv;
const role = `sluice_app_${Date.now().toString(36)}${process.pid}`;

before(async () => {
  env = await testEnv();
});

after(async () => {
  const admin = new pg.Client({ connectionString: env.config.databaseUrl });
  await admin.connect();
  await admin.query(`drop owned by ${role}`).catch(() => undefined);
  await admin.end();
  await env.cleanup();
  const server = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await server.connect();
  await server.query(`drop role if exists ${role}`);
  await server.end();
});

test("with MIGRATE_AT_START=false a program refuses a schema that is behind, naming what is pending", async () => {
  const config = loadConfig({ ...env.env, MIGRATE_AT_START: "false" });
  await assert.rejects(openDatabase(config, log), (err: Error) => {
    assert.match(err.message, /2026-11-28-001-uploads/);
    assert.match(err.message, /npm run migrate|migration Job/);
    return true;
  });
  const { rows } = await env.sql.query("select to_regclass('uploads') as uploads");
  assert.equal(rows[0].uploads, null, "nothing was created");
});

test("after the migrations, the programs land and purge an upload as a user with DML rights only", async () => {
  const migrated = await openDatabase(env.config, log);
  await migrated.db.destroy();
  const database = new URL(env.config.databaseUrl).pathname.slice(1);
  await env.sql.query(documentedGrants(database, role));

  const url = new URL(env.config.databaseUrl);
  url.username = role;
  url.password = DOCUMENTED_PASSWORD;
  const config = loadConfig({
    ...env.env,
    DATABASE_URL: url.toString(),
    MIGRATE_AT_START: "false",
  });
  const stack = await startInProcess({ ...env, config });
  try {
    const accepted = await callApi(stack.url, "POST", "/uploads", "id,name\n1,Ada\n2,Grace\n");
    assert.equal(accepted.status, 202, accepted.text);
    const id = accepted.body.id;
    await waitFor("the upload to complete", async () => {
      const status = await callApi(stack.url, "GET", `/uploads/${id}`);
      return status.body.status === "completed";
    });
    const purged = await callApi(stack.url, "DELETE", `/uploads/${id}/data`);
    assert.equal(purged.status, 200, purged.text);
    const { rows } = await env.sql.query(
      "select count(*)::int as n from upload_rows where upload_id = $1",
      [id],
    );
    assert.equal(rows[0].n, 0);
  } finally {
    await stack.stop();
  }
  // The user may not change the schema.
  const app = new pg.Client({ connectionString: url.toString() });
  await app.connect();
  await assert.rejects(app.query("alter table uploads add column x int"), /must be owner/);
  await app.end();
});

test("in production the migration makes the bucket with CREATE_BUCKET=true, again without harm, and none without it", async () => {
  // The database exists: in production nothing creates it.
  const migrated = await openDatabase(env.config, log);
  await migrated.db.destroy();
  const production = { ...env.env, NODE_ENV: "production", LOG_LEVEL: "info" };
  const migrate = async (vars: Record<string, string>) => {
    const program = startProgram("src/core/db/migrate.main.ts", vars);
    const { code } = await program.exit;
    assert.equal(code, 0, [...program.stdout, ...program.stderr].join("\n"));
  };

  const untouched = `${env.config.s3.bucket}-none`;
  await migrate({ ...production, S3_BUCKET: untouched });
  assert.equal(await bucketExists(env.s3, untouched), false);

  const made = `${env.config.s3.bucket}-made`;
  for (const run of ["first", "second"]) {
    // A region other than us-east-1: AWS wants it named in the request.
    await migrate({
      ...production,
      S3_BUCKET: made,
      CREATE_BUCKET: "true",
      AWS_REGION: "eu-west-1",
    });
    assert.equal(await bucketExists(env.s3, made), true, `after the ${run} run`);
  }
});

test("in production a program starting with CREATE_BUCKET=true makes its bucket; without it, names the setting", async () => {
  const bucket = `${env.config.s3.bucket}-start`;
  const production = { ...env.env, NODE_ENV: "production", S3_BUCKET: bucket };
  await assert.rejects(
    openStorage(loadConfig(production, { needsApiKeys: false })),
    /bucket \S+ does not exist; create it, or set CREATE_BUCKET=true/,
  );
  const s3 = await openStorage(
    loadConfig({ ...production, CREATE_BUCKET: "true" }, { needsApiKeys: false }),
  );
  s3.destroy();
  assert.equal(await bucketExists(env.s3, bucket), true);
});
