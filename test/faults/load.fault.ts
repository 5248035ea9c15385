// Load: twenty uploads sent at once, two workers; every upload completes with every row once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sampleCsv } from "../support/csv-samples.ts";
import { Cluster } from "../support/harness.ts";
import { checkLanding, waitForQuiet } from "./landing-check.ts";

test("20 uploads of 100,000 rows at once, with two workers", async () => {
  // Made first: generating them blocks this process for seconds, long enough for the
  // server to close an idle keep-alive connection that the client would then reuse.
  const samples = Array.from({ length: 20 }, (_, i) => sampleCsv(100_000, i + 1));
  // All twenty belong to one tenant: its limit of uploads in progress must let them in.
  const cluster = await Cluster.create({ MAX_ACTIVE_UPLOADS_PER_TENANT: "20" });
  try {
    await cluster.startApi();
    await cluster.startWorker();
    await cluster.startWorker();
    const started = performance.now();
    const ids = await Promise.all(
      samples.map(async (sample) => (await cluster.upload(sample.csv)).id),
    );
    await Promise.all(ids.map((id) => cluster.waitForStatus(id, "completed", 600_000)));
    const seconds = (performance.now() - started) / 1000;
    const rows = samples.length * 100_000;
    console.log(
      `load: ${samples.length} uploads, ${rows} rows in ${seconds.toFixed(1)} s wall, ${Math.round(rows / seconds)} rows/s end to end`,
    );
    const quiet = await waitForQuiet(cluster, ids);
    for (const [i, id] of ids.entries()) {
      await checkLanding(
        cluster,
        `load-upload-${i + 1}`,
        id,
        samples[i] as (typeof samples)[number],
        { status: "completed" },
        { quiet },
      );
    }
    assert.equal(new Set(ids).size, 20);
  } finally {
    await cluster.stop();
  }
});
