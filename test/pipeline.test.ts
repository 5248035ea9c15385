// A CSV goes in over HTTP; every row must come out once in PostgreSQL and every batch in S3.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sampleCsv } from "./support/csv-samples.ts";
import { deliverAgain } from "./support/redelivery.ts";
import {
  getJson,
  getObjectJson,
  listBatchObjects,
  stackForTests,
  waitFor,
} from "./support/stack.ts";

async function uploadCsv(url: string, csv: string | Uint8Array, init: RequestInit = {}) {
  return getJson(`${url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: csv,
    ...init,
  });
}

async function waitForStatus(url: string, id: string, status: string) {
  return waitFor(`upload ${id} to be ${status}`, async () => {
    const { body } = await getJson(`${url}/uploads/${id}`);
    if (body.status === "failed" || body.status === "rejected") {
      throw new Error(`upload ${id} is ${body.status}: ${JSON.stringify(body.error)}`);
    }
    return body.status === status ? body : undefined;
  });
}

describe("the pipeline", () => {
  const stack = stackForTests({ BATCH_SIZE: "1000" });

  test("lands every row of an uploaded file once, as the file's strings, and every batch in S3", async () => {
    const sample = sampleCsv(2_500);
    const accepted = await uploadCsv(stack.api.url, sample.csv);
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const id = accepted.body.id;
    assert.equal(accepted.body.rows, 2_500);
    assert.equal(accepted.body.batches.total, 3);
    assert.equal(accepted.body.links.self, `/uploads/${id}`);

    const done = await waitForStatus(stack.api.url, id, "completed");
    assert.equal(done.rowsLanded, 2_500);
    assert.equal(done.batches.landed, 3);

    const { rows } = await stack.env.sql.query(
      "select row_number, data from upload_rows where upload_id = $1 order by row_number",
      [id],
    );
    assert.equal(rows.length, sample.rows.length);
    rows.forEach((row, i) => {
      assert.equal(Number(row.row_number), i + 1);
      assert.deepEqual(
        row.data,
        Object.fromEntries(sample.header.map((h, c) => [h, sample.rows[i]?.[c]])),
      );
    });

    const keys = await listBatchObjects(stack.env, id);
    assert.deepEqual(
      keys,
      [1, 2, 3].map((seq) => `uploads/${id}/batch-0000000${seq}.json`),
    );
    const last = await getObjectJson(stack.env, keys[2] as string);
    assert.equal(last.seq, 3);
    assert.deepEqual(last.columns, sample.header);
    assert.equal(last.rows.length, 500);
    assert.deepEqual(last.rows[0], { row: 2001, values: sample.rows[2000] });
  });

  test("accepts a multipart upload and keeps only a sanitized file name", async () => {
    const sample = sampleCsv(10);
    const form = new FormData();
    form.append("file", new Blob([sample.csv], { type: "text/csv" }), "../../etc/cities.csv");
    const accepted = await getJson(`${stack.api.url}/uploads`, { method: "POST", body: form });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    assert.equal(accepted.body.filename, "cities.csv");
    const done = await waitForStatus(stack.api.url, accepted.body.id, "completed");
    assert.equal(done.rowsLanded, 10);
  });

  test("a batch delivered twice lands once and counts once", async () => {
    const sample = sampleCsv(1_500);
    const accepted = await uploadCsv(stack.api.url, sample.csv);
    const id = accepted.body.id;
    await waitForStatus(stack.api.url, id, "completed");
    // Counted once the worker has found the claim and refreshed the view, before its ack.
    await deliverAgain(stack, id, 1);

    const { rows } = await stack.env.sql.query(
      "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
      [id],
    );
    assert.deepEqual(rows[0], { n: 1_500, distinct_rows: 1_500 });
    const status = await getJson(`${stack.api.url}/uploads/${id}`);
    assert.equal(status.body.rowsLanded, 1_500);
    assert.equal(status.body.batches.landed, 2);
  });

  test("rejected rows are not landed and are listed as CSV with their number, line and reason", async () => {
    const body = `id,name\n1,ok\n2\n3,"multi\nline",extra\n4,fine\n`;
    const accepted = await uploadCsv(stack.api.url, body);
    assert.equal(accepted.status, 202);
    const done = await waitForStatus(stack.api.url, accepted.body.id, "completed");
    assert.equal(done.rowsLanded, 2);
    assert.equal(done.rowErrors, 2);
    const { rows } = await stack.env.sql.query(
      "select row_number::int as row from upload_rows where upload_id = $1 order by 1",
      [accepted.body.id],
    );
    assert.deepEqual(rows, [{ row: 1 }, { row: 4 }]);
    const response = await fetch(`${stack.api.url}/uploads/${accepted.body.id}/errors`);
    assert.equal(response.headers.get("content-type"), "text/csv; charset=utf-8");
    const lines = (await response.text()).trim().split("\n");
    assert.equal(lines[0], "row,line,code,message");
    assert.match(lines[1] as string, /^2,3,FieldCount,/);
    assert.match(lines[2] as string, /^3,4,FieldCount,/);
    assert.equal(lines.length, 3);
  });

  test("a UTF-16 file lands as the same text", async () => {
    const text = "id,city\n1,Zürich\n2,東京\n";
    const accepted = await uploadCsv(stack.api.url, Buffer.from(`\ufeff${text}`, "utf16le"));
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    await waitForStatus(stack.api.url, accepted.body.id, "completed");
    const { rows } = await stack.env.sql.query(
      "select data from upload_rows where upload_id = $1 order by row_number",
      [accepted.body.id],
    );
    assert.deepEqual(
      rows.map((r) => r.data),
      [
        { id: "1", city: "Zürich" },
        { id: "2", city: "東京" },
      ],
    );
  });

  test("lists uploads newest first, page by page", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await uploadCsv(stack.api.url, sampleCsv(2).csv)).body.id);
    const first = await getJson(`${stack.api.url}/uploads?limit=2`);
    assert.deepEqual(
      first.body.items.map((u: { id: string }) => u.id),
      [ids[2], ids[1]],
    );
    const second = await getJson(`${stack.api.url}${first.body.next}`);
    assert.equal(second.body.items[0].id, ids[0]);
  });

  test("an unknown upload is 404 with a JSON error", async () => {
    const missing = await getJson(`${stack.api.url}/uploads/00000000-0000-4000-8000-000000000000`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, "NotFound");
    const junk = await getJson(`${stack.api.url}/uploads/${"not-an-id".repeat(200)}`);
    assert.equal(junk.status, 404);
    assert.doesNotMatch(
      JSON.stringify(junk.body),
      /not-an-id/,
      "what the client sent is not echoed",
    );
  });

  test("an upload's id in capitals names the same upload", async () => {
    const { id } = (await uploadCsv(stack.api.url, sampleCsv(2).csv)).body;
    const shouted = await getJson(`${stack.api.url}/uploads/${id.toUpperCase()}`);
    assert.equal(shouted.status, 200, JSON.stringify(shouted.body));
    assert.equal(shouted.body.id, id);
    const page = await getJson(`${stack.api.url}/uploads?limit=1&after=${id.toUpperCase()}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
  });

  test("a page's limit is written in decimal digits", async () => {
    for (const limit of ["0x10", "1e2", " 5", "5.0", "+5", "0", "101"]) {
      const listed = await getJson(`${stack.api.url}/uploads?limit=${encodeURIComponent(limit)}`);
      assert.equal(listed.status, 400, `limit=${limit}: ${JSON.stringify(listed.body)}`);
      assert.equal(listed.body.error.code, "InvalidParameter");
    }
    assert.equal((await getJson(`${stack.api.url}/uploads?limit=100`)).status, 200);
  });
});
