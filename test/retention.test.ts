// Purge: DELETE /uploads/:id/data deletes an upload's rows, row errors and S3 objects and
// keeps its record; a second purge changes nothing; an upload in progress is refused; a purge
// cut short, and uploads older than RETENTION_DAYS, are finished by the controller.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeleteBucketCommand, DeleteObjectsCommand } from "@aws-sdk/client-s3";
import { requestPurge } from "../src/core/db/purge.repository.ts";
import type { RunningProgram } from "../src/core/program/program.ts";
import {
  acceptedUpload,
  getJson,
  listBatchObjects,
  metricSample,
  stackForTests,
  startControllerInProcess,
  startInProcess,
  startWorkerInProcess,
  testEnv,
  waitFor,
} from "./support/stack.ts";

// The worker starts in the tests: an upload must be able to stay queued.
const stack = stackForTests(
  { BATCH_SIZE: "2", RETENTION_DAYS: "1", CONTROLLER_INTERVAL_SECONDS: "1" },
  { worker: false },
);

// Ten rows in five batches, one row too short: a row error.
const CSV = `id,name\n${Array.from({ length: 10 }, (_, i) => (i === 3 ? "4" : `${i + 1},n${i + 1}`)).join("\n")}\n`;

async function post(): Promise<string> {
  return (await acceptedUpload(stack.api.url, CSV)).id;
}

const completed = (id: string) =>
  waitFor(`upload ${id} to complete`, async () => {
    const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
    return body.status === "completed" ? body : undefined;
  });

async function dataOf(id: string) {
  const { env } = stack;
  const count = async (table: string) =>
    (await env.sql.query(`select count(*)::int as n from ${table} where upload_id = $1`, [id]))
      .rows[0].n as number;
  return {
    rows: await count("upload_rows"),
    rowErrors: await count("row_errors"),
    objects: (await listBatchObjects(env, id)).length,
  };
}

const purge = (id: string) => getJson(`${stack.api.url}/uploads/${id}/data`, { method: "DELETE" });

test("an upload in progress is refused; once finished its data goes, its record stays, and again is a no-op", async () => {
  const id = await post();
  const refused = await purge(id);
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, "Conflict");
  assert.match(refused.body.error.message, /queued; cancel it first/);

  stack.stopLater(await startWorkerInProcess(stack.env, { beside: stack.api }));
  await completed(id);
  assert.deepEqual(await dataOf(id), { rows: 9, rowErrors: 1, objects: 5 });

  const purged = await purge(id);
  assert.equal(purged.status, 200, JSON.stringify(purged.body));
  assert.equal(purged.body.status, "completed");
  assert.ok(purged.body.purgedAt);
  assert.equal(purged.body.rowsLanded, 9);
  assert.deepEqual(await dataOf(id), { rows: 0, rowErrors: 0, objects: 0 });
  const errors = await fetch(`${stack.api.url}/uploads/${id}/errors`);
  assert.equal(await errors.text(), "row,line,code,message\n");

  const again = await purge(id);
  assert.equal(again.status, 200);
  assert.equal(again.body.purgedAt, purged.body.purgedAt);
  assert.deepEqual(await dataOf(id), { rows: 0, rowErrors: 0, objects: 0 });
  assert.equal(
    (await getJson(`${stack.api.url}/uploads/${id}`)).body.purgedAt,
    purged.body.purgedAt,
  );
});

test("the controller finishes a purge cut short and purges uploads older than RETENTION_DAYS", async () => {
  const [cut, old, fresh] = [await post(), await post(), await post()];
  for (const id of [cut, old, fresh]) await completed(id);

  // A purge recorded, then stopped half-way: some rows deleted, the rest and S3 left.
  assert.equal((await requestPurge(stack.api.runtime.db, cut)).kind, "started");
  await stack.env.sql.query("delete from upload_rows where upload_id = $1 and row_number <= 5", [
    cut,
  ]);
  // Created two days ago, past RETENTION_DAYS=1.
  await stack.env.sql.query(
    "update uploads set created_at = now() - interval '2 days' where id = $1",
    [old],
  );

  stack.stopLater(await startControllerInProcess(stack.env, undefined));
  for (const id of [cut, old]) {
    await waitFor(`upload ${id} to be purged`, async () => {
      const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
      return body.purgedAt !== null;
    });
    assert.deepEqual(await dataOf(id), { rows: 0, rowErrors: 0, objects: 0 });
  }
  // The controller has passed since; the recent upload keeps its data.
  const { rows } = await stack.env.sql.query(
    "select purged_at from uploads where id = $1 and purged_at is null",
    [fresh],
  );
  assert.equal(rows.length, 1);
  assert.deepEqual(await dataOf(fresh), { rows: 9, rowErrors: 1, objects: 5 });
});

test("the batches of a purged upload still queued leave no object in S3 when they are delivered", async () => {
  const own = await testEnv({ BATCH_SIZE: "2" });
  const api = await startInProcess(own, { worker: false });
  let late: RunningProgram | undefined;
  try {
    const { id } = await acceptedUpload(api.url, CSV);
    await waitFor("its five batches to be queued", async () => {
      const { body } = await getJson(`${api.url}/uploads/${id}`);
      return body.batches.published === 5;
    });
    // Cancelled, then purged, while its batches wait in the queue for a worker.
    assert.equal((await getJson(`${api.url}/uploads/${id}`, { method: "DELETE" })).status, 200);
    const purged = await getJson(`${api.url}/uploads/${id}/data`, { method: "DELETE" });
    assert.equal(purged.status, 200, JSON.stringify(purged.body));

    const worker = await startWorkerInProcess(own, { beside: api });
    late = worker;
    await waitFor(
      "the five batches to be delivered and skipped",
      async () =>
        (await metricSample(worker.url, "sluice_batches_consumed_total", 'outcome="skipped"')) ===
        5,
    );
    assert.deepEqual(await listBatchObjects(own, id), []);
  } finally {
    await late?.stop();
    await api.stop();
    await own.cleanup();
  }
});

test("a purge whose bucket is gone purges PostgreSQL and answers as any purge", async () => {
  const own = await testEnv({ BATCH_SIZE: "2" });
  const api = await startInProcess(own);
  try {
    const { id } = await acceptedUpload(api.url, CSV);
    await waitFor(`upload ${id} to complete`, async () => {
      const { body } = await getJson(`${api.url}/uploads/${id}`);
      return body.status === "completed";
    });
    // The bucket removed under Sluice (by an operator, a lifecycle rule, another account):
    // the purge finds nothing to delete in S3.
    const Bucket = own.config.s3.bucket;
    const keys = await listBatchObjects(own, id);
    assert.equal(keys.length, 5);
    await own.s3.send(
      new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }),
    );
    await own.s3.send(new DeleteBucketCommand({ Bucket }));

    const purged = await getJson(`${api.url}/uploads/${id}/data`, { method: "DELETE" });
    assert.equal(purged.status, 200, JSON.stringify(purged.body));
    assert.ok(purged.body.purgedAt);
    const count = async (table: string) =>
      (await own.sql.query(`select count(*)::int as n from ${table} where upload_id = $1`, [id]))
        .rows[0].n as number;
    assert.deepEqual([await count("upload_rows"), await count("row_errors")], [0, 0]);
  } finally {
    await api.stop();
    await own.cleanup();
  }
});
