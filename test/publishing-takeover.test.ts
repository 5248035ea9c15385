// Api replicas sharing UPLOAD_DIR: the publishing of an upload whose api died is taken over by
// another replica, from what was recorded as published; an upload whose stored batches no api
// holds any more, or are cut short, is failed, saying so, rather than left processing for good.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { access, writeFile } from "node:fs/promises";
import { test } from "node:test";
import amqp from "amqplib";
import { storedPath } from "../src/api/intake/upload-intake.ts";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { freePort, startProgram } from "./support/program.ts";
import {
  callApi,
  startControllerInProcess,
  startInProcess,
  stopsAfter,
  type TestEnv,
  testEnv,
  uploadsCounted,
  waitFor,
} from "./support/stack.ts";
import { storedBatch } from "./support/stored-batches.ts";

const stopLater = stopsAfter();

/** Waits for upload `id` to be failed; its error code and message then. */
const failedUpload = (test: TestEnv, id: string) =>
  waitFor("the upload to be failed", async () => {
    const { rows } = await test.sql.query(
      "select status, error_code, error_message from uploads where id = $1",
      [id],
    );
    return rows[0].status === "failed" && rows[0];
  });

const csv = `id,name\n${Array.from({ length: 400 }, (_, i) => `${i},name ${i}\n`).join("")}`;

test("a replica takes over the publishing of an upload whose api died mid-publish", async () => {
  const env = stopLater(
    await testEnv({ BATCH_SIZE: "10", MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: "100000" }),
  );
  const [port, otherPort] = [await freePort(), await freePort()];
  // Dies once RabbitMQ has confirmed the seventh batch, as a SIGKILL would end it.
  const dying = startProgram("src/api/main.ts", {
    ...env.env,
    PORT: String(port),
    LOG_LEVEL: "info",
    SLUICE_FAULT: "after-publish:7",
  });
  const other = startProgram("src/api/main.ts", {
    ...env.env,
    PORT: String(otherPort),
    LOG_LEVEL: "info",
  });
  try {
    for (const api of [dying, other]) {
      await api.line("the api to listen", (line) => line.includes('"api listening"'), 120_000);
    }
    const accepted = await callApi(`http://127.0.0.1:${port}`, "POST", "/uploads", csv);
    assert.equal(accepted.status, 202, accepted.text);
    const id = accepted.body.id as string;
    const exit = await dying.exit;
    assert.equal(exit.signal, "SIGKILL");
    const { rows: before } = await env.sql.query(
      "select status, batches_published from uploads where id = $1",
      [id],
    );
    assert.ok(before[0].batches_published < 40, "the api died before publishing every batch");

    await other.line(
      "the other replica to take the upload over",
      (line) => line.includes(`"uploadId":"${id}"`) && line.includes('"all batches published"'),
      180_000,
    );
    const { rows } = await env.sql.query(
      "select status, batches_published, batches_total from uploads where id = $1",
      [id],
    );
    assert.deepEqual(rows[0], { status: "queued", batches_published: 40, batches_total: 40 });
    await assert.rejects(access(storedPath(env.config.uploadDir, id)), { code: "ENOENT" });
  } finally {
    await dying.stop();
    await other.stop();
  }
});

test("an upload whose stored batches no api holds is failed, saying so", async () => {
  const env = stopLater(await testEnv({ CONTROLLER_INTERVAL_SECONDS: "1" }));
  const controller = stopLater(await startControllerInProcess(env, undefined));
  const test = env;
  // Its api died ten minutes ago, and its UPLOAD_DIR with it; no replica took it over.
  const id = randomUUID();
  await env.sql.query(
    `insert into uploads (id, tenant, status, batches_total, batches_published, last_progress_at)
     values ($1, 'default', 'processing', 40, 12, now() - interval '10 minutes')`,
    [id],
  );
  const failed = await failedUpload(test, id);
  assert.equal(failed.error_code, "BatchesLost");
  assert.match(failed.error_message, /stored batches/);
  // Another, whose publisher renews its lease, stays.
  const live = randomUUID();
  await env.sql.query(
    `insert into uploads (id, tenant, status, batches_total, batches_published, publisher, publishing_until, last_progress_at)
     values ($1, 'default', 'processing', 40, 12, 'alive', now() + interval '30 seconds', now() - interval '10 minutes')`,
    [live],
  );
  // A pass of the controller after it: one that fails another stranded upload.
  const witness = randomUUID();
  await env.sql.query(
    `insert into uploads (id, tenant, status, batches_total, batches_published, last_progress_at)
     values ($1, 'default', 'queued', 40, 0, now() - interval '10 minutes')`,
    [witness],
  );
  await waitFor("another pass of the controller", async () => {
    const { rows } = await test.sql.query("select status from uploads where id = $1", [witness]);
    return rows[0].status === "failed";
  });
  const { rows } = await env.sql.query("select status from uploads where id = $1", [live]);
  assert.equal(rows[0].status, "processing");
  // Counted where the other endings are: the two it failed, and no other.
  await uploadsCounted("the controller", controller.url, "failed", 2);
});

test("an api that finds the stored batches of an upload it publishes gone fails the upload, saying so", async () => {
  const env = stopLater(await testEnv());
  const api = stopLater(await startInProcess(env, { worker: false }));
  const test = env;
  const id = randomUUID();
  await env.sql.query(
    "insert into uploads (id, tenant, status, batches_total, batches_published) values ($1, 'default', 'queued', 40, 12)",
    [id],
  );
  // Its folder was replaced by an empty one: nothing stored is left to publish.
  api.api.publisher.start({ id, batchesTotal: 40 });
  const failed = await failedUpload(test, id);
  assert.equal(failed.error_code, "BatchesLost");
  assert.match(failed.error_message, /stored batches of this upload are gone/);
  await uploadsCounted("the api", api.url, "failed", 1);
});

test("an api that finds the stored batches of an upload cut short fails the upload, saying so, and publishes no batch twice", async () => {
  const env = stopLater(await testEnv({ MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: "100000" }));
  const own = await startInProcess(env, { worker: false });
  const test = env;
  const whole = (id: string) => [1, 2, 3].map((seq) => storedBatch(id, seq));
  // Six batches each, the file ending inside the fourth, or right after the third (a disk
  // that filled, a copy cut short).
  const cuts = {
    inside: (id: string) => Buffer.concat([...whole(id), storedBatch(id, 4).subarray(0, 30)]),
    between: (id: string) => Buffer.concat(whole(id)),
  };
  const ids: Record<string, string> = {};
  try {
    for (const [cut, bytes] of Object.entries(cuts)) {
      const id = randomUUID();
      ids[cut] = id;
      await env.sql.query(
        "insert into uploads (id, tenant, status, batches_total) values ($1, 'default', 'queued', 6)",
        [id],
      );
      await writeFile(storedPath(env.config.uploadDir, id), bytes(id));
      own.api.publisher.start({ id, batchesTotal: 6 });
    }
    for (const [cut, id] of Object.entries(ids)) {
      const failed = await waitFor(`the upload cut ${cut} batches to be failed`, async () => {
        const { rows } = await test.sql.query(
          "select status, error_code, error_message, batches_published from uploads where id = $1",
          [id],
        );
        return rows[0].status === "failed" && rows[0];
      });
      assert.equal(failed.error_code, "BatchesLost", cut);
      assert.match(failed.error_message, /stored batches of this upload are damaged/, cut);
      assert.equal(failed.batches_published, 3, cut);
      // Nothing can publish from it any more: it goes, once the upload is failed.
      await waitFor(`the file cut ${cut} batches to be removed`, () =>
        access(storedPath(test.config.uploadDir, id)).then(
          () => false,
          () => true,
        ),
      );
    }
    await uploadsCounted("the api", own.url, "failed", 2);
    // The three whole batches of each, once each.
    const queued = await drainQueue(queueNames(env.config.namespace).batches);
    assert.deepEqual(
      queued.sort(),
      Object.values(ids)
        .flatMap((id) => [1, 2, 3].map((seq) => `${id}/${seq}`))
        .sort(),
    );
  } finally {
    await own.stop();
  }
});

/** The message ids a queue holds, taking every message off it. */
async function drainQueue(queue: string): Promise<string[]> {
  const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
  try {
    const channel = await connection.createChannel();
    const ids: string[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) return ids;
      ids.push(message.properties.messageId);
    }
  } finally {
    await connection.close();
  }
}
