// A cancel sticks, whenever it comes and whichever api replica takes it: once DELETE has
// answered, no further batch of the upload commits, its status never leaves `cancelled`, and
// its stored batches are gone.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { test } from "node:test";
import amqp from "amqplib";
import pg from "pg";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { landingLockName } from "../src/core/db/uploads.repository.ts";
import { startProxiedApi } from "./support/proxied-api.ts";
import {
  acceptedUpload,
  callApi,
  getJson,
  type InProcess,
  stackStarter,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const startStack = stackStarter("each");

async function start(overrides: Record<string, string>): Promise<[TestEnv, InProcess]> {
  const { env, api } = await startStack(overrides);
  return [env, api];
}

const csvOf = (rows: number, from = 0) =>
  Array.from({ length: rows }, (_, i) => `${from + i},name ${from + i}`).join("\n");

async function statusOf(test: TestEnv, id: string) {
  const { rows } = await test.sql.query(
    "select status, batches_published, batches_total from uploads where id = $1",
    [id],
  );
  return rows[0];
}

async function landedBatches(test: TestEnv, id: string): Promise<number> {
  const { rows } = await test.sql.query(
    "select count(*)::int as n from upload_batches where upload_id = $1",
    [id],
  );
  return rows[0].n;
}

async function queued(test: TestEnv): Promise<number> {
  const connection = await amqp.connect(test.config.rabbitmqUrl);
  try {
    const channel = await connection.createChannel();
    const { messageCount } = await channel.checkQueue(queueNames(test.config.namespace).batches);
    return messageCount;
  } finally {
    await connection.close();
  }
}

/** Lets the worker take every message left, then stops it once those in hand are done. */
async function drain(test: TestEnv, running: InProcess): Promise<void> {
  await running.api.publisher.finish();
  await waitFor("the queue to drain", async () => (await queued(test)) === 0);
  await running.stop();
}

/**
 * Sends an upload to `running` that stops half way until DELETE (sent to `cancelAt`) has
 * answered that it is cancelled, then sends the rest: the POST is refused 409 Cancelled.
 */
async function cancelWhileArriving(test: TestEnv, running: InProcess, cancelAt: string) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const posting = getJson(`${running.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(Buffer.from(`id,name\n${csvOf(5_000)}\n`));
        await released;
        controller.enqueue(Buffer.from(`${csvOf(5_000, 5_000)}\n`));
        controller.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  const id = await waitFor("the upload to be arriving", async () => {
    const { rows } = await test.sql.query("select id, status from uploads");
    return rows[0]?.status === "validating" && (rows[0].id as string);
  });
  const cancelled = await getJson(`${cancelAt}/uploads/${id}`, { method: "DELETE" });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  assert.equal(cancelled.body.status, "cancelled");
  release();

  const answer = await posting;
  assert.equal(answer.status, 409, JSON.stringify(answer.body).slice(0, 300));
  assert.equal(answer.body.error.code, "Cancelled");
  assert.equal((await statusOf(test, id)).status, "cancelled");
  return id;
}

test("a cancel while the body arrives sticks: the POST is refused and nothing lands", async () => {
  const [test, running] = await start({ BATCH_SIZE: "100" });
  const id = await cancelWhileArriving(test, running, running.url);
  await drain(test, running);
  assert.equal(await landedBatches(test, id), 0);
  assert.equal((await statusOf(test, id)).status, "cancelled");
  assert.deepEqual(await readdir(test.config.uploadDir), []);
});

test("a cancel sent to another api replica while the body arrives sticks: the POST is refused and nothing lands", async () => {
  const [test, running] = await start({ BATCH_SIZE: "100" });
  // The second replica of the same deployment: same PostgreSQL, Redis, RabbitMQ and folder.
  const other = await startInProcess(test, { worker: false });
  try {
    const id = await cancelWhileArriving(test, running, other.url);
    const seen = await getJson(`${running.url}/uploads/${id}`);
    assert.equal(seen.body.status, "cancelled", JSON.stringify(seen.body));
    await drain(test, running);
    assert.equal(await landedBatches(test, id), 0);
    const { rows } = await test.sql.query(
      "select count(*)::int as n from upload_rows where upload_id = $1",
      [id],
    );
    assert.equal(rows[0].n, 0);
    assert.equal((await statusOf(test, id)).status, "cancelled");
    assert.deepEqual(await readdir(test.config.uploadDir), []);
  } finally {
    await other.stop();
  }
});

test("a cancel while workers land: batches in a transaction commit before DELETE answers, none after", async () => {
  // Fewer batches in hand than the in-process api and worker share connections, so that the
  // DELETE has one to wait with.
  const [test, running] = await start({ BATCH_SIZE: "10", WORKER_PREFETCH: "4" });
  // Holds every worker's COPY inside its transaction, after the batch's claim.
  const blocker = new pg.Client({ connectionString: test.config.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query("begin");
    await blocker.query("lock table upload_rows in share mode");
    const posted = await getJson(`${running.url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: `id,name\n${csvOf(2_000)}\n`,
    });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    const id = posted.body.id as string;
    const database = new URL(test.config.databaseUrl).pathname.slice(1);
    const waiting = async (event: string) => {
      const { rows } = await test.sql.query(
        "select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' and wait_event = $2",
        [database, event],
      );
      return rows[0].n;
    };
    await waitFor(
      "a worker to wait inside its transaction",
      async () => (await waiting("relation")) > 0,
    );

    let answered = false;
    const deleting = getJson(`${running.url}/uploads/${id}`, { method: "DELETE" }).finally(() => {
      answered = true;
    });
    await waitFor(
      "DELETE to wait for the batches in hand",
      async () => (await waiting("advisory")) > 0,
    );
    // Every batch in hand holds its claim and waits on the blocker, inside its transaction.
    const inHand = await waiting("relation");
    assert.equal(answered, false);
    await blocker.query("commit");
    const cancelled = await deleting;
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    // The batches in hand committed before the answer, and no other batch did.
    const landedAtCancel = await landedBatches(test, id);
    assert.equal(landedAtCancel, inHand);

    await drain(test, running);
    assert.equal(await landedBatches(test, id), landedAtCancel);
    assert.equal((await statusOf(test, id)).status, "cancelled");
  } finally {
    await blocker.end();
  }
});

test("a cancel while publishing stops the publishing, removes the stored batches, and lands nothing more", async () => {
  const [test, running] = await start({ BATCH_SIZE: "2" });
  const posted = await getJson(`${running.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: `id,name\n${csvOf(40_000)}\n`,
  });
  assert.equal(posted.status, 202, JSON.stringify(posted.body));
  const id = posted.body.id as string;
  await waitFor("the first batch to land", async () => (await landedBatches(test, id)) > 0);
  const cancelled = await getJson(`${running.url}/uploads/${id}`, { method: "DELETE" });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  const landedAtCancel = await landedBatches(test, id);

  await drain(test, running);
  assert.equal(await landedBatches(test, id), landedAtCancel);
  const after = await statusOf(test, id);
  assert.equal(after.status, "cancelled");
  assert.ok(after.batches_published < after.batches_total, JSON.stringify(after));
  assert.deepEqual(await readdir(test.config.uploadDir), []);
});

test("a cancel whose answer Redis fails once it is recorded stands, and DELETE sent again answers 200", async () => {
  const test = await testEnv();
  const api = await startProxiedApi(test, ["Redis"], { COMMAND_TIMEOUT_MS: "1000" });
  // Holds the cancel between reading the upload and recording the cancel, as a batch in hand would.
  const hold = new pg.Client({ connectionString: test.config.databaseUrl });
  try {
    const { id } = await acceptedUpload(api.url, "id,name\n1,a\n");
    await hold.connect();
    const lock = "hashtextextended($1, 0)";
    await hold.query(`select pg_advisory_lock(${lock})`, [landingLockName(id)]);
    const first = callApi(api.url, "DELETE", `/uploads/${id}`);
    const database = new URL(test.config.databaseUrl).pathname.slice(1);
    await waitFor("the cancel to wait for the batches in hand", async () => {
      const { rows } = await test.sql.query(
        "select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event = 'advisory'",
        [database],
      );
      return rows[0].n > 0;
    });
    api.proxies.Redis.stall();
    await hold.query(`select pg_advisory_unlock(${lock})`, [landingLockName(id)]);
    const answer = await first;
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.body.error.details?.service, "Redis", answer.text);
    assert.equal((await statusOf(test, id)).status, "cancelled");

    await api.proxies.Redis.restore();
    const again = await waitFor("DELETE to be answered once Redis answers", async () => {
      const retried = await callApi(api.url, "DELETE", `/uploads/${id}`);
      return retried.status !== 503 && retried;
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.status, "cancelled");
    const seen = await callApi(api.url, "GET", `/uploads/${id}`);
    assert.equal(seen.body.status, "cancelled", seen.text);
  } finally {
    await hold.end();
    await api.stop();
    await test.cleanup();
  }
});
