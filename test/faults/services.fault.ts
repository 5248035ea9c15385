// Faults in the services around Sluice: the broker, the database, the S3 endpoint and Redis
// go away mid-upload; the programs must recover by themselves and land every row once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { sampleCsv } from "../support/csv-samples.ts";
import { Cluster, workersReady } from "../support/harness.ts";
import { getJson, metricSample } from "../support/http.ts";
import { holdLanding } from "../support/landing-holds.ts";
import { waitFor } from "../support/program.ts";
import { checkLanding } from "./landing-check.ts";
import {
  ensureServicesUp,
  postgres,
  rabbitmq,
  redis,
  restoreServicesOnInterrupt,
} from "./services.ts";

before(() => restoreServicesOnInterrupt());
after(() => ensureServicesUp());

const ROWS = 20_000;
const BATCHES = 200;

/**
 * A cluster with an api and a worker, an upload under way, and the fault done to it. The
 * upload's landing is held from before the fault begins until it ends (unless `held` is
 * false), so that the fault certainly hits the upload under way: a fault that begins before
 * the first batch or after the last proves nothing. The batches landed when it begins and
 * ends are recorded.
 */
async function underFault(
  name: string,
  env: Record<string, string>,
  fault: (cluster: Cluster, id: string) => Promise<void>,
  { held = true } = {},
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
    const sample = sampleCsv(ROWS);
    const { id } = await cluster.upload(sample.csv);
    await waitFor("some batches to land", async () => (await cluster.landedNow(id)).batches > 0);
    const release = held ? await holdLanding(cluster.test.config.databaseUrl, id) : undefined;
    let ends: { batches: number; rows: number };
    let began: string;
    try {
      const begins = await cluster.landedNow(id);
      began = `fault began at ${begins.batches}/${BATCHES} batches${held ? " (held)" : ""}, ${begins.rows} rows landed`;
      assert.ok(
        begins.batches > 0 && begins.batches < BATCHES,
        `the fault hits mid-upload: ${began}`,
      );
      await fault(cluster, id);
      ends = await cluster.landedNow(id);
    } finally {
      await release?.();
      await ensureServicesUp();
    }
    const note = `${began}; ended at ${ends.batches}/${BATCHES}, ${ends.rows} rows`;
    await cluster.waitForStatus(id, "completed");
    await checkLanding(cluster, name, id, sample, { status: "completed" }, { note });
  } finally {
    await cluster.stop();
  }
}

/** Batches the cluster's workers have sent to a retry queue so far. */
async function retried(cluster: Cluster): Promise<number> {
  const counts = await Promise.all(
    cluster
      .workerOpsUrls()
      .map((url) => metricSample(url, "sluice_batches_consumed_total", 'outcome="retried"')),
  );
  return counts.reduce<number>((a, n) => a + (n ?? 0), 0);
}

test("RabbitMQ stopped and started during an upload", async () => {
  await underFault("rabbitmq-restart", {}, async (cluster) => {
    rabbitmq.stopApp();
    // Down until the worker has seen it go: its readiness follows its broker connection.
    await waitFor("the worker to lose the broker", async () =>
      (await workersReady(cluster)).every((ready) => !ready),
    );
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

// Not held: a batch waiting on the hold would time out on it, not on the table's lock. The
// fault waits for a batch of the upload to time out on the lock, so it hits the upload.
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
        // Held until a batch has timed out on it and gone to a retry queue.
        await waitFor("a batch to time out on the lock", async () => (await retried(cluster)) > 0);
        await locker.query("commit");
      } finally {
        await locker.end();
      }
    },
    { held: false },
  );
});

// Not held: a worker writes a batch to S3 before it lands it, so with landing held its
// batches in hand would wait, and none would try S3. The fault waits for a batch of the
// upload to fail on S3, so it hits the upload.
test("the S3 endpoint down for a while", async () => {
  await underFault(
    "s3-down",
    { MAX_ATTEMPTS: "8" },
    async (cluster, id) => {
      await cluster.s3.down();
      const landedBefore = (await cluster.landedNow(id)).batches;
      // Down until a batch has failed its S3 write and gone to a retry queue.
      await waitFor("a batch to fail on S3", async () => (await retried(cluster)) > 0);
      // Only batches whose S3 write had already succeeded (at most the prefetch) may land.
      const landedWhileDown = (await cluster.landedNow(id)).batches - landedBefore;
      if (landedWhileDown > 4)
        throw new Error(`${landedWhileDown} batches landed while S3 was down`);
      await cluster.s3.up();
    },
    { held: false },
  );
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
