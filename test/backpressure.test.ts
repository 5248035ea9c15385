// Publishing stays at most MAX_BATCHES_IN_FLIGHT_PER_UPLOAD batches ahead of landing: with no
// worker, RabbitMQ holds that many batches of a file, not all of them; once a worker lands
// them the rest follow, every row exactly once.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import amqp from "amqplib";
import pg from "pg";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { sampleCsv } from "./support/csv-samples.ts";
import {
  acceptedUpload,
  getJson,
  type InProcess,
  spawnProgram,
  stackStarter,
  startWorkerInProcess,
  type TestEnv,
  waitFor,
} from "./support/stack.ts";

const MAX_IN_FLIGHT = 3;
const ROWS = 20;
const BATCH_SIZE = 2;

const startStack = stackStarter();
let env: TestEnv;
let stack: InProcess;
before(async () => {
  ({ env, api: stack } = await startStack(
    {
      BATCH_SIZE: String(BATCH_SIZE),
      MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: String(MAX_IN_FLIGHT),
    },
    { worker: false },
  ));
});

async function heldUploads(url = stack.url): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = /^sluice_uploads_publishing_held(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
  return value === undefined ? 0 : Number(value);
}

async function batchesPublished(id: string): Promise<number> {
  const { rows } = await env.sql.query(
    "select batches_published::int as n from uploads where id = $1",
    [id],
  );
  return rows[0].n;
}

test("publishing waits for landing once MAX_BATCHES_IN_FLIGHT_PER_UPLOAD batches wait, then completes", async () => {
  const sample = sampleCsv(ROWS);
  const accepted = await acceptedUpload(stack.url, sample.csv);
  const { id } = accepted;
  const total = ROWS / BATCH_SIZE;
  assert.equal(accepted.batches.total, total);

  // Either publishing is held, or (without a bound) it published the whole file.
  await waitFor(
    "publishing to be held or finished",
    async () => (await heldUploads()) === 1 || (await batchesPublished(id)) === total,
  );
  const connection = await amqp.connect(env.config.rabbitmqUrl);
  const channel = await connection.createChannel();
  const names = queueNames(env.config.namespace);
  try {
    assert.equal((await channel.checkQueue(names.batches)).messageCount, MAX_IN_FLIGHT);
    assert.equal(await batchesPublished(id), MAX_IN_FLIGHT);
  } finally {
    await connection.close();
  }

  const worker = await startWorkerInProcess(env, { beside: stack });
  try {
    const done = await waitFor("the upload to complete", async () => {
      const { body } = await getJson(`${stack.url}/uploads/${id}`);
      // The last batch may land before the api has recorded it published: the view catches up.
      return body.status === "completed" && body.batches.published === total ? body : undefined;
    });
    assert.equal(done.rowsLanded, ROWS);
    assert.equal(done.batches.published, total);
  } finally {
    await worker.stop();
  }
  assert.equal(await heldUploads(), 0);

  const { rows } = await env.sql.query(
    "select row_number::int as row, data from upload_rows where upload_id = $1 order by 1",
    [id],
  );
  assert.deepEqual(
    rows.map((r) => r.row),
    Array.from({ length: ROWS }, (_, i) => i + 1),
  );
  assert.deepEqual(
    rows.map((r) => sample.header.map((column) => r.data[column])),
    sample.rows,
  );
});

test("while publishing waits again, PostgreSQL holds every batch it published before the wait", async () => {
  // A worker process of its own, stopped while the api goes on: it holds the first batches
  // while landing is held, stops consuming on SIGTERM, then lands them as it drains.
  const { env: own, api } = await startStack(
    {
      BATCH_SIZE: String(BATCH_SIZE),
      MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: String(MAX_IN_FLIGHT),
    },
    { worker: false },
  );
  const worker = spawnProgram("worker", own.env);
  const connection = await amqp.connect(own.config.rabbitmqUrl);
  const channel = await connection.createChannel();
  const queue = queueNames(own.config.namespace).batches;
  const hold = new pg.Client({ connectionString: own.env.DATABASE_URL });
  try {
    await hold.connect();
    await hold.query("begin");
    await hold.query("lock table upload_batches in exclusive mode");
    const { id } = await acceptedUpload(api.url, sampleCsv(ROWS).csv);
    await waitFor("the worker to hold the first batches", async () => {
      const { messageCount, consumerCount } = await channel.checkQueue(queue);
      return consumerCount === 1 && messageCount === 0 && (await heldUploads(api.url)) === 1;
    });
    const stopping = worker.stop();
    await waitFor(
      "the worker to stop consuming",
      async () => (await channel.checkQueue(queue)).consumerCount === 0,
    );
    await hold.query("commit");
    await stopping;

    // What RabbitMQ and the landed batches say was published, and what the upload records.
    const counts = async () => {
      const { rows } = await own.sql.query(
        `select (select count(*)::int from upload_batches where upload_id = $1) as landed,
                (select batches_published from uploads where id = $1) as recorded`,
        [id],
      );
      const ready = (await channel.checkQueue(queue)).messageCount;
      return { published: rows[0].landed + ready, recorded: rows[0].recorded };
    };
    await waitFor("publishing to wait again with nothing left to land", async () => {
      const { published } = await counts();
      return published === 2 * MAX_IN_FLIGHT && (await heldUploads(api.url)) === 1;
    });
    await waitFor("the upload to record what it published", async () => {
      const { published, recorded } = await counts();
      return recorded === published;
    });
  } finally {
    await hold.end().catch(() => undefined);
    await connection.close();
    await worker.kill();
  }
});
