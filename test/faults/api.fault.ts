// Faults in the api: killed while publishing, and a full upload folder.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import amqp from "amqplib";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import { Cluster } from "../support/harness.ts";
import { getJson, postCsv } from "../support/http.ts";
import { checkLanding } from "./landing-check.ts";

test("api killed after publishing part of an upload finishes publishing on restart", async () => {
  const cluster = await Cluster.create({ BATCH_SIZE: "100" });
  try {
    const doomed = await cluster.startApi({ SLUICE_FAULT: "after-publish:50" });
    const sample = sampleCsv(20_000);
    const { id } = await cluster.upload(sample.csv);
    const [, signal] = await once(doomed.child, "exit");
    assert.equal(signal, "SIGKILL");
    const published = (
      await cluster.query("select batches_published from uploads where id = $1", [id])
    )[0];
    assert.ok(published.batches_published < 200, "the api died before publishing everything");
    await cluster.startWorker();
    await cluster.startApi();
    await cluster.waitForStatus(id, "completed");
    await checkLanding(cluster, "api-killed-mid-publish", id, sample, { status: "completed" });
    assert.deepEqual(
      await readdir(cluster.test.config.uploadDir),
      [],
      "the stored file is removed once published",
    );
  } finally {
    await cluster.stop();
  }
});

function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("a full UPLOAD_DIR answers 507, removes the partial file and publishes nothing", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-full-"));
  if (!mountTmpfs(dir, "256k")) {
    await rm(dir, { recursive: true, force: true });
    t.skip("this machine does not allow mounting a small tmpfs");
    return;
  }
  const cluster = await Cluster.create({ UPLOAD_DIR: dir });
  try {
    await cluster.startApi();
    const sample = sampleCsv(20_000);
    const response = await postCsv(`${cluster.apiUrl}/uploads`, sample.csv);
    assert.equal(response.status, 507, response.text);
    assert.equal(response.body.error.code, "InsufficientStorage");
    const id = response.body.error.details.uploadId;
    assert.deepEqual(await readdir(dir), [], "the partial file is removed");
    const connection = await amqp.connect(cluster.test.config.rabbitmqUrl);
    const channel = await connection.createChannel();
    const { messageCount } = await channel.checkQueue(
      queueNames(cluster.test.config.namespace).batches,
    );
    await connection.close();
    assert.equal(messageCount, 0, "nothing was published");
    const { body } = await getJson(`${cluster.apiUrl}/uploads/${id}`);
    assert.equal(body.status, "rejected");
    console.log(
      `upload-dir-full: rows ${sample.rows.length}/0, lost 0 (refused with 507), duplicated 0, s3 objects 0/0, status ${body.status}`,
    );
  } finally {
    await cluster.stop();
    execFileSync("umount", [dir]);
    await rm(dir, { recursive: true, force: true });
  }
});
