// A worker killed in the middle of an upload loses nothing and duplicates nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sampleCsv } from "./support/csv-samples.ts";
import {
  acceptedUpload,
  getJson,
  listBatchObjects,
  spawnProgram,
  stackForTests,
  waitFor,
} from "./support/stack.ts";

const stack = stackForTests({ BATCH_SIZE: "100", WORKER_PREFETCH: "4" }, { worker: false });

const landed = async (id: string) =>
  Number(
    (await stack.env.sql.query("select batches_landed from uploads where id = $1", [id])).rows[0]
      .batches_landed,
  );

test("a worker killed mid-upload and started again completes the upload with every row once", async () => {
  const sample = sampleCsv(20_000);
  const { id } = await acceptedUpload(stack.api.url, sample.csv);

  const first = spawnProgram("worker", stack.env.env);
  await waitFor("some batches to land", async () => (await landed(id)) >= 20);
  await first.kill();
  const before = await landed(id);
  assert.ok(before < 200, "the worker was killed before it finished");

  const second = spawnProgram("worker", stack.env.env);
  try {
    await waitFor(
      "the upload to complete",
      async () => {
        const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
        return body.status === "completed";
      },
      120_000,
    );
  } finally {
    await second.stop();
  }

  const { rows } = await stack.env.sql.query(
    "select count(*)::int as n, count(distinct row_number)::int as d, min(row_number)::int as lo, max(row_number)::int as hi from upload_rows where upload_id = $1",
    [id],
  );
  assert.deepEqual(rows[0], { n: 20_000, d: 20_000, lo: 1, hi: 20_000 });
  const batches = await stack.env.sql.query(
    "select count(*)::int as n from upload_batches where upload_id = $1",
    [id],
  );
  assert.equal(batches.rows[0].n, 200);
  assert.equal((await listBatchObjects(stack.env, id)).length, 200);
  const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
  assert.equal(body.rowsLanded, 20_000);
  assert.equal(body.batches.landed, 200);
});
