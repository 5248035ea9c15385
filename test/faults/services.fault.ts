// Faults in the services around Sluice: the broker, the database, the S3 endpoint and Redis
// go away mid-upload; the programs must recover by themselves and land every row once.
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { sampleCsv } from "../support/csv-samples.ts";
import { getJson, waitFor } from "../support/stack.ts";
import { Cluster, checkLanding } from "./harness.ts";
import {
  ensureServicesUp,
  postgres,
  rabbitmq,
  redis,
  restoreServicesOnInterrupt,
} from "./services.ts";

before(() => restoreServicesOnInterrupt());
after(() => ensureServicesUp());

/** A cluster with an api and a worker, an upload well under way, and the fault done to it. */
async function underFault(
  name: string,
  env: Record<string, string>,
  fault: (cluster: Cluster, id: string) => Promise<void>,
  expected = { status: "completed" },
): Promise<void> {
  const cluster = await Cluster.create({
    BATCH_SIZE: "100",
    WORKER_PREFETCH: "4",
    RETRY_BASE_MS: "500",
    ...env,
  });
  try {
    await cluster.startApi();
    await cluster.startWorker();
    const sample = sampleCsv(20_000);
    const id = await cluster.upload(sample.csv);
    await waitFor("some batches to land", async () => (await cluster.landedBatches(id)) >= 10);
    try {
      await fault(cluster, id);
    } finally {
      await ensureServicesUp();
    }
    await cluster.waitForStatus(id, expected.status);
    await checkLanding(cluster, name, id, sample, expected);
  } finally {
    await cluster.stop();
  }
}

test("RabbitMQ stopped and started during an upload", async () => {
  await underFault("rabbitmq-restart", {}, async () => {
    rabbitmq.stopApp();
    await sleep(3_000);
    await rabbitmq.startApp();
  });
});

test("every broker connection closed by the broker", async () => {
  await underFault("rabbitmq-connections-closed", {}, async () => {
    rabbitmq.closeAllConnections();
  });
});

test("PostgreSQL restarted mid-upload", async () => {
  await underFault("postgres-restart", { MAX_ATTEMPTS: "8" }, async () => {
    await postgres.restartImmediately();
  });
});

test("a table lock held longer than the worker's statement timeout", async () => {
  await underFault(
    "table-lock",
    { DB_STATEMENT_TIMEOUT_MS: "1000", MAX_ATTEMPTS: "8" },
    async (cluster) => {
      const locker = new pg.Client({ connectionString: cluster.test.env.DATABASE_URL });
      await locker.connect();
      try {
        await locker.query("begin");
        await locker.query("lock table upload_rows in access exclusive mode");
        await sleep(4_000);
        await locker.query("commit");
      } finally {
        await locker.end();
      }
    },
  );
});

test("the S3 endpoint down for a while", async () => {
  await underFault("s3-down", { MAX_ATTEMPTS: "8" }, async (cluster, id) => {
    await cluster.s3.down();
    const landedBefore = await cluster.landedBatches(id);
    await sleep(4_000);
    // Only batches whose S3 write had already succeeded (at most the prefetch) may land.
    const landedWhileDown = (await cluster.landedBatches(id)) - landedBefore;
    if (landedWhileDown > 4) throw new Error(`${landedWhileDown} batches landed while S3 was down`);
    await cluster.s3.up();
  });
});

test("Redis flushed and restarted empty: status is rebuilt from PostgreSQL", async () => {
  await underFault("redis-restart", { MAX_ATTEMPTS: "8" }, async (cluster, id) => {
    await redis.flushAndRestart();
    // Until the api has reconnected it answers 503; then the view comes back from PostgreSQL.
    await waitFor("the status to be served again", async () => {
      const { status, body } = await getJson(`${cluster.apiUrl}/uploads/${id}`);
      if (status !== 200 && status !== 503)
        throw new Error(`unexpected ${status}: ${JSON.stringify(body)}`);
      return status === 200 && body.id === id;
    });
  });
});
