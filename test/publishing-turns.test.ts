// Publishing takes a few turns at a time; an upload whose publishing fails and waits to try
// again gives its turn back meanwhile, so that others publish.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { after, test } from "node:test";
import { storedPath } from "../src/api/intake/upload-intake.ts";
import { type InProcess, startInProcess, type TestEnv, testEnv, waitFor } from "./support/stack.ts";
import { storedBatch } from "./support/stored-batches.ts";

let env: TestEnv | undefined;
let api: InProcess | undefined;
after(async () => {
  await api?.stop();
  await env?.cleanup();
});

/** More than the publisher's turns, so that uploads retrying would hold every one of them. */
const BROKEN = 6;

async function recordQueued(test: TestEnv, id: string, batches: number): Promise<void> {
  await test.sql.query(
    "insert into uploads (id, tenant, status, batches_total, created_at) values ($1, 'default', 'queued', $2, clock_timestamp())",
    [id, batches],
  );
}

test("uploads waiting to retry their publishing leave their turns to the others", async () => {
  env = await testEnv();
  api = await startInProcess(env, { worker: false });
  const broken: string[] = [];
  for (let i = 0; i < BROKEN; i++) {
    const id = randomUUID();
    broken.push(id);
    await recordQueued(env, id, 2);
    // A folder where its stored file belongs (a damaged file would fail the upload at
    // once): every pass over it fails to read it.
    await mkdir(storedPath(env.config.uploadDir, id));
  }
  const healthy = randomUUID();
  await recordQueued(env, healthy, 2);
  await writeFile(
    storedPath(env.config.uploadDir, healthy),
    Buffer.concat([storedBatch(healthy, 1), storedBatch(healthy, 2)]),
  );

  // In order of arrival: the broken ones take every turn first.
  assert.equal(await api.api.publisher.resumeUnfinished(), BROKEN + 1);
  const test = env;
  await waitFor("the healthy upload to be published", async () => {
    const { rows } = await test.sql.query("select batches_published from uploads where id = $1", [
      healthy,
    ]);
    return rows[0].batches_published === 2;
  });
  const { rows } = await env.sql.query(
    "select count(*)::int as n from uploads where id = any($1) and batches_published = 0 and status = 'queued'",
    [broken],
  );
  assert.equal(rows[0].n, BROKEN, "the broken uploads are still waiting to retry");
});
