// Faults in the worker: killed at each crash point, stopped mid-batch, fed a poison batch.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { sampleCsv } from "../support/csv-samples.ts";
import { Cluster } from "../support/harness.ts";
import { getJson, metricSample } from "../support/http.ts";
import { waitFor } from "../support/program.ts";
import { checkLanding } from "./landing-check.ts";

const BATCHED = { BATCH_SIZE: "100", WORKER_PREFETCH: "4", RETRY_BASE_MS: "200" };
const ROWS = 3_000;
const BATCHES = 30;

const CRASHES = [
  ["mid-s3-put:5", "while sending the body of its fifth S3 write"],
  ["after-s3-put:5", "after the S3 write, before the database commit"],
  ["before-view:5", "after a commit, before the Redis view is updated"],
  [`before-view:${BATCHES}`, "after the last batch's commit, before the Redis view is updated"],
  ["after-commit:5", "after the commit and the view update, before the ack"],
] as const;

for (const [fault, when] of CRASHES) {
  test(`worker killed ${when}`, async () => {
    const cluster = await Cluster.create(BATCHED);
    try {
      await cluster.startApi();
      const doomed = await cluster.startWorker({ SLUICE_FAULT: fault });
      const sample = sampleCsv(ROWS);
      const { id } = await cluster.upload(sample.csv);
      const [, signal] = await once(doomed.child, "exit");
      assert.equal(signal, "SIGKILL");
      const atCrash = await cluster.landedNow(id);
      const { body: viewAtCrash } = await getJson(`${cluster.apiUrl}/uploads/${id}`);
      let note = `died with ${atCrash.batches}/${BATCHES} batches landed, the view showing ${viewAtCrash.batches.landed} ${viewAtCrash.status}`;
      if (fault === `before-view:${BATCHES}`) {
        // Every batch committed, the upload completed in PostgreSQL, and the view left behind.
        assert.equal(atCrash.batches, BATCHES, note);
        assert.equal(viewAtCrash.status, "processing", note);
        assert.ok(viewAtCrash.batches.landed < BATCHES, note);
      } else {
        assert.ok(atCrash.batches < BATCHES, `the worker died mid-upload: ${note}`);
      }
      await cluster.startWorker();
      await cluster.waitForStatus(id, "completed");
      note += "; a new worker finished";
      await checkLanding(
        cluster,
        `worker-killed-${fault.replace(/:\d+$/, "")}${fault === `before-view:${BATCHES}` ? "-last-batch" : ""}`,
        id,
        sample,
        { status: "completed" },
        { note },
      );
    } finally {
      await cluster.stop();
    }
  });
}

test("a commit whose answer is lost is landed and counted once", async () => {
  const cluster = await Cluster.create(BATCHED);
  try {
    await cluster.startApi();
    // The fifth commit lands, and the worker hears instead that its connection fell.
    await cluster.startWorker({ SLUICE_FAULT: "commit-answer-lost:5" });
    const sample = sampleCsv(ROWS);
    const { id } = await cluster.upload(sample.csv);
    await cluster.waitForStatus(id, "completed");
    const opsUrl = cluster.workerOpsUrls()[0] ?? assert.fail("the worker serves its metrics");
    const consumed = (outcome: string) =>
      metricSample(opsUrl, "sluice_batches_consumed_total", `outcome="${outcome}"`);
    // The check waits until no batch is in any queue, the retried one included.
    await checkLanding(cluster, "commit-answer-lost", id, sample, { status: "completed" });
    assert.equal(await consumed("retried"), 1, "the batch whose answer was lost was retried");
    assert.equal(await consumed("duplicate"), 1, "and came back once to find itself landed");
  } finally {
    await cluster.stop();
  }
});

test("worker sent SIGTERM mid-upload finishes or returns its batches within its deadline", async () => {
  const cluster = await Cluster.create({
    ...BATCHED,
    WORKER_PREFETCH: "8",
    SHUTDOWN_TIMEOUT_MS: "5000",
  });
  try {
    await cluster.startApi();
    const worker = await cluster.startWorker({ LOG_LEVEL: "info" });
    const sample = sampleCsv(20_000);
    const { id } = await cluster.upload(sample.csv);
    await waitFor("some batches to land", async () => (await cluster.landedNow(id)).batches > 0);
    worker.child.kill("SIGTERM");
    const [code] = await once(worker.child, "exit");
    const output = worker.lines.join("\n");
    assert.equal(code, 0, output);
    // The worker says when its drain outlived SHUTDOWN_TIMEOUT_MS and it exited anyway.
    assert.doesNotMatch(output, /shutdown deadline passed/);
    assert.match(output, /shutting down/, "the worker went through its shutdown");
    const atStop = await cluster.landedNow(id);
    assert.ok(atStop.batches < 200, "the worker stopped before the upload was done");
    await cluster.startWorker();
    await cluster.waitForStatus(id, "completed");
    await checkLanding(
      cluster,
      "worker-sigterm",
      id,
      sample,
      { status: "completed" },
      { note: `stopped with ${atStop.batches}/200 batches landed` },
    );
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
    const sample = sampleCsv(ROWS);
    const { id } = await cluster.upload(sample.csv);
    await cluster.waitForStatus(id, "failed");
    await waitFor(
      "every other batch to land",
      async () => (await cluster.landedNow(id)).batches === BATCHES - 1,
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
