// The live view in Redis never goes back: a read of PostgreSQL made before a worker's commit
// may be written after that worker's newer view.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { insertUploadWithinLimit } from "../src/core/db/uploads.repository.ts";
import { createLogger } from "../src/core/logger.ts";
import { openRuntime, type Runtime } from "../src/core/program/runtime.ts";
import { type TestEnv, testEnv } from "./support/stack.ts";

let env: TestEnv;
let runtime: Runtime;
before(async () => {
  env = await testEnv();
  runtime = await openRuntime(env.config, createLogger("test", "silent"));
});
after(async () => {
  await runtime?.close();
  await env?.cleanup();
});

test("a stale refresh does not take the view back to fewer batches landed", async () => {
  const id = randomUUID();
  await insertUploadWithinLimit(runtime.db, { id, tenant: "default", filename: null }, 100);
  const landed = (n: number) =>
    env.sql.query("update uploads set batches_landed = $2, rows_landed = $2 * 1000 where id = $1", [
      id,
      n,
    ]);

  await landed(100);
  await runtime.status.refresh(id);
  // What an older read of the row would write, arriving late.
  await landed(99);
  await runtime.status.refresh(id);
  const view = await runtime.status.get(id);
  assert.equal(view?.batches.landed, 100);
  assert.equal(view?.rowsLanded, 100_000);

  // Progress forward is still written.
  await landed(101);
  await runtime.status.refresh(id);
  assert.equal((await runtime.status.get(id))?.batches.landed, 101);
});
