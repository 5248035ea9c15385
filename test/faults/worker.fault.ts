// Faults in the worker: killed at each crash point, stopped mid-batch, fed a poison batch.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { sampleCsv } from "../support/csv-samples.ts";
import { waitFor } from "../support/stack.ts";
import { Cluster, checkLanding } from "./harness.ts";

const BATCHED = { BATCH_SIZE: "100", WORKER_PREFETCH: "4", RETRY_BASE_MS: "200" };

for (const point of ["after-s3-put", "after-commit"] as const) {
  test(`worker killed ${point === "after-s3-put" ? "after the S3 write, before the database commit" : "after the commit, before the ack"}`, async () => {
    const cluster = await Cluster.create(BATCHED);
    try {
      await cluster.startApi();
      const doomed = await cluster.startWorker({ SLUICE_FAULT: `${point}:5` });
      const sample = sampleCsv(3_000);
      const id = await cluster.upload(sample.csv);
      const [, signal] = await once(doomed.child, "exit");
      assert.equal(signal, "SIGKILL");
      await cluster.startWorker();
      await cluster.waitForStatus(id, "completed");
      await checkLanding(cluster, `worker-killed-${point}`, id, sample, { status: "completed" });
    } finally {
      await cluster.stop();
    }
  });
}

test("worker sent SIGTERM mid-upload finishes or returns its batches within its deadline", async () => {
  const cluster = await Cluster.create({
    ...BATCHED,
    WORKER_PREFETCH: "8",
    SHUTDOWN_TIMEOUT_MS: "5000",
  });
  try {
    await cluster.startApi();
    const worker = await cluster.startWorker();
    const sample = sampleCsv(20_000);
    const id = await cluster.upload(sample.csv);
    await waitFor("some batches to land", async () => (await cluster.landedBatches(id)) >= 20);
    const stopping = Date.now();
    worker.child.kill("SIGTERM");
    const [code] = await once(worker.child, "exit");
    const took = Date.now() - stopping;
    assert.equal(code, 0, worker.output.join(""));
    assert.ok(took < 5_000, `stopped in ${took} ms, within SHUTDOWN_TIMEOUT_MS`);
    assert.ok(
      (await cluster.landedBatches(id)) < 200,
      "the worker stopped before the upload was done",
    );
    await cluster.startWorker();
    await cluster.waitForStatus(id, "completed");
    await checkLanding(cluster, "worker-sigterm", id, sample, { status: "completed" });
  } finally {
    await cluster.stop();
  }
});

test("a batch that always fails waits in the dead-letter queue and fails its upload", async () => {
  const cluster = await Cluster.create({ ...BATCHED, MAX_ATTEMPTS: "3", RETRY_BASE_MS: "100" });
  try {
    await cluster.startApi();
    await cluster.startWorker();
    // The database refuses one row, as a real constraint would.
    await cluster.test.sql.query(`
      create function refuse_row_1234() returns trigger language plpgsql as $$
      begin
        if new.row_number = 1234 then raise exception 'row 1234 refused'; end if;
        return new;
      end $$;
      create trigger refuse_row_1234 before insert on upload_rows
        for each row execute function refuse_row_1234();`);
    const sample = sampleCsv(3_000);
    const id = await cluster.upload(sample.csv);
    await cluster.waitForStatus(id, "failed");
    await waitFor(
      "every other batch to land",
      async () => (await cluster.landedBatches(id)) === 29,
    );
    await checkLanding(cluster, "poison-batch", id, sample, { status: "failed", deadBatches: 1 });
    const { rows } = await cluster.test.sql.query(
      "select error_message from uploads where id = $1",
      [id],
    );
    assert.match(
      rows[0].error_message,
      /batch 13 could not be landed after 3 attempt\(s\): .*row 1234 refused/,
    );
  } finally {
    await cluster.stop();
  }
});
