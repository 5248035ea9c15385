// After a fault case: waits until nothing moves, then compares the file with everything that
// could hold a row twice or count it twice: the rows in PostgreSQL, the batch claims, the S3
// objects and their rows, the upload's counters, the Redis view and the workers' counters.
import assert from "node:assert/strict";
import amqp from "amqplib";
import { Redis } from "ioredis";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { statusKeys } from "../../src/core/status/status-keys.ts";
import { batchKey } from "../../src/core/storage/s3-keys.ts";
import { type QueueState, queueStates } from "../support/broker-queues.ts";
import type { Sample } from "../support/csv-samples.ts";
import type { Cluster } from "../support/harness.ts";
import { getJson, metricSample } from "../support/http.ts";
import { waitFor } from "../support/program.ts";
import { getObjectJson, listBatchObjects } from "../support/test-env.ts";

export type Expectation = { status: string; deadBatches?: number };

/**
 * Waits for a quiet moment: no batch waiting or held in any queue but the dead-letter one,
 * no batch in any worker's hands (a handler may outlive its channel), every batch of a
 * completed upload published; seen twice in a row, since a retried batch passes from its
 * delay queue to the work queue.
 */
export async function waitForQuiet(cluster: Cluster, ids: string[]): Promise<QueueState[]> {
  const { namespace } = cluster.test.config;
  const dead = queueNames(namespace).dead;
  let quietBefore = false;
  let states: QueueState[] = [];
  await waitFor("the queues and the workers to be idle", async () => {
    states = queueStates(namespace);
    const queuesIdle = states.every((q) => q.unacked === 0 && (q.name === dead || q.ready === 0));
    // A scrape that fails (a keep-alive connection the server closed as it was reused) is no
    // answer: not quiet yet, ask again.
    const inHand = await Promise.all(
      cluster
        .workerOpsUrls()
        .map((url) => metricSample(url, "sluice_worker_batches_in_flight").catch(() => undefined)),
    );
    const unpublished = await cluster.query(
      "select count(*)::int as n from uploads where id = any($1::uuid[]) and status = 'completed' and batches_published <> batches_total",
      [ids],
    );
    const quiet = queuesIdle && inHand.every((n) => n === 0) && unpublished[0].n === 0;
    const twice = quiet && quietBefore;
    quietBefore = quiet;
    return twice;
  });
  return states;
}

async function deadLetteredRows(url: string, queue: string): Promise<Set<number>> {
  const rows = new Set<number>();
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  // Unacknowledged gets see each message once; closing the channel puts them all back.
  for (let message = await channel.get(queue); message; message = await channel.get(queue)) {
    for (const { row } of JSON.parse(message.content.toString()).rows) rows.add(row);
  }
  await connection.close();
  return rows;
}

type Excess = Record<string, number>;

const describeExcess = (excess: Excess) =>
  Object.entries(excess)
    .filter(([, n]) => n !== 0)
    .map(([what, n]) => `${what} ${n > 0 ? "+" : ""}${n}`)
    .join(", ");

/**
 * Compares the file with what landed and prints the case's line:
 * `<case>: rows <in>/<landed>, lost <n>, duplicated <n>, s3 objects <n>/<expected>, ...`.
 * "duplicated" adds up everything counted beyond the truth: claims of batches that do not
 * exist, rows in more than one S3 object, counters, view and metrics above the rows landed.
 * Rows of dead-lettered batches are not lost: they wait, whole, in the dead-letter queue.
 */
export async function checkLanding(
  cluster: Cluster,
  name: string,
  id: string,
  sample: Sample,
  expected: Expectation,
  options: { note?: string; quiet?: QueueState[] } = {},
): Promise<string> {
  const { config, sql } = cluster.test;
  const expectedBatches = Math.ceil(sample.rows.length / config.limits.batchSize);
  const deadBatches = expected.deadBatches ?? 0;
  const queues = options.quiet ?? (await waitForQuiet(cluster, [id]));

  // PostgreSQL, the truth.
  const landed = (
    await sql.query("select row_number::int as row, data from upload_rows where upload_id = $1", [
      id,
    ])
  ).rows as { row: number; data: Record<string, string> }[];
  const claims = (
    await sql.query("select seq, rows from upload_batches where upload_id = $1", [id])
  ).rows as { seq: number; rows: number }[];
  const [upload] = (
    await sql.query(
      `select status, rows_landed::int as "rowsLanded", batches_landed as "batchesLanded",
              batches_total as "batchesTotal"
       from uploads where id = $1`,
      [id],
    )
  ).rows;
  const byRow = new Map<number, Record<string, string>[]>();
  for (const { row, data } of landed) byRow.set(row, [...(byRow.get(row) ?? []), data]);
  const fileRow = (row: number) => sample.rows[row - 1];
  let mismatched = landed.filter(
    ({ row, data }) => !sample.header.every((column, i) => data[column] === fileRow(row)?.[i]),
  ).length;

  // S3: exactly one object per batch, each holding exactly its batch's rows, as the file has them.
  const dead = await deadLetteredRows(config.rabbitmqUrl, queueNames(config.namespace).dead);
  const keys = await listBatchObjects(cluster.test, id);
  const wanted = new Set(Array.from({ length: expectedBatches }, (_, i) => batchKey(id, i + 1)));
  const strayObjects = keys.filter((key) => !wanted.has(key)).length;
  const claimed = new Map(claims.map((c) => [c.seq, c.rows]));
  const inObjects = new Map<number, number>();
  let brokenObjects = 0;
  for (const key of keys.filter((k) => wanted.has(k))) {
    const seq = Number(key.slice(-13, -5));
    const object = await getObjectJson(cluster.test, key).catch(() => undefined);
    if (!object || object.uploadId !== id || object.seq !== seq || !Array.isArray(object.rows)) {
      brokenObjects++;
      continue;
    }
    const objectRows = object.rows as { row: number; values: string[] }[];
    // A claimed batch's rows are in PostgreSQL; an unclaimed one's wait in the dead letters.
    const where = claimed.has(seq) ? "landed" : "dead";
    if (where === "landed" && claimed.get(seq) !== objectRows.length) brokenObjects++;
    for (const { row, values } of objectRows) {
      inObjects.set(row, (inObjects.get(row) ?? 0) + 1);
      const same = sample.header.every((_, i) => values?.[i] === fileRow(row)?.[i]);
      if (!same || !(where === "landed" ? byRow.has(row) : dead.has(row))) mismatched++;
    }
  }
  const objectRowsNotInPostgres = [...inObjects.keys()].filter(
    (row) => !byRow.has(row) && !dead.has(row),
  ).length;
  const postgresRowsNotInObjects = [...byRow.keys()].filter((row) => !inObjects.has(row)).length;

  // The counters and the live view, against the rows and claims in PostgreSQL.
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
  const cached = await redis
    .hget(statusKeys(config.namespace).upload(id), "view")
    .finally(() => redis.disconnect());
  const view = cached ? JSON.parse(cached) : undefined;
  const { body: served } = await getJson(`${cluster.apiUrl}/uploads/${id}`);
  const workerCounts = await Promise.all(
    cluster
      .workerOpsUrls()
      .map(async (url) => (await metricSample(url, "sluice_rows_landed_total")) ?? 0),
  );
  // The workers count rows across uploads: compare with every row of this cluster's database.
  const metricRows = workerCounts.reduce((a, b) => a + b, 0);
  const [{ n: allRows }] = (await sql.query("select count(*)::int as n from upload_rows")).rows;

  let lost = 0;
  for (let row = 1; row <= sample.rows.length; row++) {
    if (!byRow.has(row) && !dead.has(row)) lost++;
  }
  const excess: Excess = {
    "rows in PostgreSQL": landed.length - byRow.size,
    "claims of no batch": claims.filter((c) => c.seq < 1 || c.seq > expectedBatches).length,
    "rows in two S3 places": [...inObjects.values()].reduce((a, n) => a + n - 1, 0),
    "stray S3 objects": strayObjects,
    "uploads.rows_landed": upload.rowsLanded - landed.length,
    "uploads.batches_landed": upload.batchesLanded - claims.length,
    "view rowsLanded": (view?.rowsLanded ?? 0) - landed.length,
    "view batches.landed": (view?.batches.landed ?? 0) - claims.length,
    // A worker that was killed took its counts with it: the survivors' can only be lower.
    sluice_rows_landed_total: cluster.everyWorkerLives()
      ? metricRows - allRows
      : Math.max(0, metricRows - allRows),
  };
  const duplicated = Object.values(excess).reduce((a, n) => a + Math.max(0, n), 0);
  const depth = (suffix: string) =>
    queues.filter((q) => q.name.endsWith(suffix)).reduce((a, q) => a + q.ready, 0);
  const deadDepth = depth(".dead");
  const line = [
    `${name}: rows ${sample.rows.length}/${landed.length}, lost ${lost}, duplicated ${duplicated}`,
    `s3 objects ${keys.length}/${expectedBatches} (rows match PostgreSQL: ${mismatched === 0 && brokenObjects === 0 && objectRowsNotInPostgres === 0 && postgresRowsNotInObjects === 0 ? "yes" : "no"})`,
    `claims ${claims.length}/${expectedBatches - deadBatches}`,
    `counted rows ${upload.rowsLanded} batches ${upload.batchesLanded}/${upload.batchesTotal}`,
    `view rows ${view?.rowsLanded} batches ${view?.batches.landed} ${view?.status}`,
    `status ${upload.status}`,
  ].join(", ");
  const details = [
    dead.size ? `${dead.size} rows held in the dead-letter queue` : "",
    describeExcess(excess),
    options.note,
  ].filter(Boolean);
  console.log(details.length ? `${line} (${details.join("; ")})` : line);

  assert.equal(lost, 0, "no row is lost");
  assert.equal(duplicated, 0, `nothing is counted twice: ${describeExcess(excess)}`);
  assert.equal(mismatched, 0, "every landed row, and every row in S3, equals the file's row");
  assert.equal(brokenObjects, 0, "every S3 object is whole, and holds its claim's row count");
  assert.equal(objectRowsNotInPostgres, 0, "every row in S3 is landed or dead-lettered");
  assert.equal(postgresRowsNotInObjects, 0, "every landed row is in its batch's S3 object");
  assert.deepEqual(
    keys,
    [...wanted].sort(),
    "every batch, landed or dead, is in S3, once, under its own key",
  );
  assert.equal(claims.length, expectedBatches - deadBatches, "one claim per landed batch");
  assert.equal(upload.status, expected.status);
  assert.ok(view, "the live view is in Redis");
  assert.deepEqual(
    excess,
    Object.fromEntries(Object.keys(excess).map((k) => [k, 0])),
    "the counters, the view and the metrics count each row and batch once",
  );
  assert.equal(view.status, expected.status, "the live view caught up with PostgreSQL");
  assert.equal(served.status, expected.status);
  assert.equal(served.rowsLanded, landed.length, "the api serves the caught-up view");
  assert.equal(deadDepth, deadBatches, "the dead-letter queue holds exactly the failed batches");
  return line;
}
