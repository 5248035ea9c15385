// Publishing stays at most MAX_BATCHES_IN_FLIGHT_PER_UPLOAD batches ahead of landing: with no
// worker, RabbitMQ holds that many batches of a file, not all of them; once a worker lands
// them the rest follow, every row exactly once.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import amqp from "amqplib";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { sampleCsv } from "./support/csv-samples.ts";
import {
  acceptedUpload,
  getJson,
  type InProcess,
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

async function heldUploads(): Promise<number> {
  const text = await (await fetch(`${stack.url}/metrics`)).text();
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
