// Nothing outlives an upload that ended: stored batches of finished uploads go when the api
// starts, and an upload whose api stopped while receiving it does not stay open forever;
// and nothing an api starts by removing belongs to an upload another api still receives.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import type { UploadStatus } from "../src/core/uploads/upload-status.ts";
import { sampleCsv } from "./support/csv-samples.ts";
import {
  getJson,
  startControllerInProcess,
  startInProcess,
  stopsAfter,
  type TestEnv,
  testEnv,
  uploadsCounted,
  waitFor,
} from "./support/stack.ts";

const stopLater = stopsAfter("each");

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
  const test = stopLater(await testEnv());
  const api = stopLater(await startInProcess(test, { worker: false }));
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
  const test = stopLater(await testEnv({ CONTROLLER_INTERVAL_SECONDS: "1" }));
  const api = stopLater(await startInProcess(test, { worker: false }));
  const abandoned = await uploadIn(test, "validating", 600);
  const received = await uploadIn(test, "received", 600);
  const arriving = await uploadIn(test, "validating", 10);
  const controller = stopLater(await startControllerInProcess(test, undefined));

  for (const id of [abandoned, received]) {
    const ended = await waitFor(
      `upload ${id} ended`,
      async () => {
        const { body } = await getJson(`${api.url}/uploads/${id}`);
        return body.status === "rejected" && body;
      },
      20_000,
    );
    assert.equal(ended.error.code, "Interrupted");
    assert.match(ended.error.message, /the api stopped while receiving the body/);
  }
  const { rows } = await test.sql.query("select status from uploads where id = $1", [arriving]);
  assert.equal(rows[0].status, "validating");
  await uploadsCounted("the controller", controller.url, "rejected", 2);
});

test("an api starting on an upload folder it shares with another leaves alone the upload that one is receiving", async () => {
  const test = stopLater(await testEnv({ BATCH_SIZE: "100" }));
  const api = stopLater(await startInProcess(test));
  const { csv } = sampleCsv(10_000);
  const half = csv.indexOf("\r\n", csv.length / 2) + 2;
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const posting = getJson(`${api.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: new ReadableStream<Uint8Array>({
      async start(body) {
        body.enqueue(Buffer.from(csv.slice(0, half)));
        await released;
        body.enqueue(Buffer.from(csv.slice(half)));
        body.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  const partial = await waitFor("the first half to be stored", async () =>
    (await readdir(test.config.uploadDir)).find((name) => name.endsWith(".part")),
  );
  // A second replica starts on the same claim, as a rollout or a scale-up does.
  const beside = stopLater(await startInProcess(test, { worker: false }));
  await beside.api.publisher.resumeUnfinished();
  const kept = (await readdir(test.config.uploadDir)).includes(partial);
  release();
  assert.ok(kept, "the partial file is kept");

  const answer = await posting;
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  const done = await waitFor(
    "the upload to complete",
    async () => {
      const { body } = await getJson(`${api.url}/uploads/${answer.body.id}`);
      return ["completed", "failed"].includes(body.status) && body;
    },
    60_000,
  );
  assert.equal(done.status, "completed", JSON.stringify(done));
  assert.equal(done.rowsLanded, 10_000);
});

test("at start, the api removes the partial files of uploads nobody receives any more", async () => {
  const test = stopLater(await testEnv());
  const api = stopLater(await startInProcess(test, { worker: false }));
  const ended = [
    await uploadIn(test, "rejected"),
    await uploadIn(test, "cancelled"),
    await uploadIn(test, "validating", 600),
    randomUUID(),
  ];
  const arriving = await uploadIn(test, "validating", 10);
  for (const id of [...ended, arriving]) {
    await writeFile(join(test.config.uploadDir, `${id}.batches.part`), "partial batches");
  }
  // What a start does once its connections are open.
  await api.api.publisher.resumeUnfinished();
  assert.deepEqual(await readdir(test.config.uploadDir), [`${arriving}.batches.part`]);
});
