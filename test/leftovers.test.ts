// Nothing outlives an upload that ended: stored batches of finished uploads go when the api
// starts, and an upload whose api stopped while receiving it does not stay open forever.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import type { UploadStatus } from "../src/core/db/database.ts";
import {
  getJson,
  type InProcess,
  type InProcessController,
  startControllerInProcess,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

let env: TestEnv | undefined;
let api: InProcess | undefined;
let controller: InProcessController | undefined;
afterEach(async () => {
  await controller?.stop();
  await api?.stop();
  await env?.cleanup();
  controller = undefined;
  api = undefined;
  env = undefined;
});

async function uploadIn(
  test: TestEnv,
  status: UploadStatus,
  idleSeconds = 0,
  batches: { total: number; published: number } = { total: 3, published: 3 },
): Promise<string> {
  const id = randomUUID();
  await test.sql.query(
    `insert into uploads (id, tenant, status, batches_total, batches_published, last_progress_at)
     values ($1, 'default', $2, $3, $4, now() - make_interval(secs => $5))`,
    [id, status, batches.total, batches.published, idleSeconds],
  );
  return id;
}

test("at start, the api removes the stored batches of uploads that will never publish them", async () => {
  env = await testEnv();
  const test = env;
  api = await startInProcess(test, { worker: false });
  const gone = [
    await uploadIn(test, "cancelled"),
    await uploadIn(test, "rejected"),
    await uploadIn(test, "completed"),
    await uploadIn(test, "queued"),
    randomUUID(),
  ];
  // A failed upload's batches wait for a re-drive.
  const kept = [await uploadIn(test, "validating"), await uploadIn(test, "failed")];
  for (const id of [...gone, ...kept]) {
    await writeFile(join(test.config.uploadDir, `${id}.batches`), "stored batches");
  }
  // What a start does once its connections are open.
  await api.api.publisher.resumeUnfinished();
  assert.deepEqual(
    (await readdir(test.config.uploadDir)).sort(),
    kept.map((id) => `${id}.batches`).sort(),
  );
});

test("an upload whose api stopped while receiving it is ended by the controller", async () => {
  env = await testEnv({ CONTROLLER_INTERVAL_SECONDS: "1" });
  const test = env;
  api = await startInProcess(test, { worker: false });
  const abandoned = await uploadIn(test, "validating", 600);
  const received = await uploadIn(test, "received", 600);
  const arriving = await uploadIn(test, "validating", 10);
  controller = await startControllerInProcess(test, undefined);

  for (const id of [abandoned, received]) {
    const ended = await waitFor(
      `upload ${id} ended`,
      async () => {
        const { body } = await getJson(`${api?.url}/uploads/${id}`);
        return body.status === "rejected" && body;
      },
      20_000,
    );
    assert.equal(ended.error.code, "Interrupted");
    assert.match(ended.error.message, /the api stopped while receiving the body/);
  }
  const { rows } = await test.sql.query("select status from uploads where id = $1", [arriving]);
  assert.equal(rows[0].status, "validating");
});
