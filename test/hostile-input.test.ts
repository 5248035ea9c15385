// Thousands of random and mutated bodies through the real upload path: the api answers each
// with 202 or a 4xx JSON error, never a 500, never hangs, and a rejected upload publishes
// nothing. A sample then goes through a worker: what is accepted lands, what is not leaves
// no trace.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { describe, test } from "node:test";
import amqp from "amqplib";
import fc from "fast-check";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { decodeHeaders } from "../src/core/uploads/batch-message.ts";
import { hostileUpload, requestFor } from "./support/hostile-uploads.ts";
import {
  acceptedUpload,
  getJson,
  getObjectJson,
  listBatchObjects,
  stackForTests,
  waitFor,
} from "./support/stack.ts";

const LIMITS = {
  MAX_COLUMNS: "8",
  MAX_FIELD_BYTES: "2048",
  // Small enough that the mutations' long runs pass it, so that bodies stay small too.
  MAX_UPLOAD_BYTES: "65536",
  BATCH_SIZE: "7",
  // Accepted uploads pile up unconsumed, all of the one open tenant, every batch published.
  MAX_ACTIVE_UPLOADS_PER_TENANT: "100000",
  MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: "100000",
};
const ERROR_CODE = /^[A-Z][A-Za-z]+$/;

type Outcome =
  | { kind: "accepted"; id: string; batches: number }
  | { kind: "rejected"; id: string | undefined };

/** Sends one upload and checks the answer's shape; what happened to it, for later checks. */
async function send(url: string, query: string, request: RequestInit): Promise<Outcome> {
  const response = await fetch(`${url}/uploads${query}`, {
    ...request,
    // An answer that never comes fails the property instead of hanging the test; a loaded
    // machine answers each within far less.
    signal: AbortSignal.timeout(120_000),
  });
  const text = await response.text();
  const what = `${response.status} ${text.slice(0, 300)}`;
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/, what);
  const body = JSON.parse(text);
  if (response.status === 202) {
    assert.match(body.id, /^[0-9a-f-]{36}$/, what);
    assert.equal(body.status, "queued", what);
    assert.equal(body.batches.total, Math.ceil(body.rows / Number(LIMITS.BATCH_SIZE)), what);
    return { kind: "accepted", id: body.id, batches: body.batches.total };
  }
  assert.ok(response.status >= 400 && response.status < 500, what);
  assert.match(body.error?.code, ERROR_CODE, what);
  assert.equal(typeof body.error.message, "string", what);
  assert.doesNotMatch(text, /\bat \S+ \(|\.ts:\d|node_modules/, what);
  return { kind: "rejected", id: body.error.details?.uploadId };
}

describe("the api alone", () => {
  // No worker: every published batch stays in the queue to be counted.
  const stack = stackForTests(LIMITS, { worker: false });
  const outcomes: Outcome[] = [];

  test("answers every hostile upload with 202 or a 4xx JSON error carrying a code", async () => {
    // Several at once, as clients send them; about 220 in all, which reach every generator's
    // cases on both sides of the property while a loaded machine stays well within the limit.
    await fc.assert(
      fc.asyncProperty(fc.array(hostileUpload, { minLength: 1, maxLength: 8 }), async (uploads) => {
        const answers = uploads.map((u) => send(stack.api.url, u.query, requestFor(u)));
        outcomes.push(...(await Promise.all(answers)));
      }),
      { numRuns: 50 },
    );
    const accepted = outcomes.filter((o) => o.kind === "accepted").length;
    // The generators must reach both sides, or the property says little.
    // About one in ten is accepted: a tenth of the bodies grow past MAX_UPLOAD_BYTES, and most
    // mutations break the file.
    assert.ok(accepted > 8, `${accepted} accepted`);
    assert.ok(outcomes.length - accepted > 50, `${outcomes.length - accepted} rejected`);
  });

  test("publishes the batches of accepted uploads and nothing of rejected ones", async () => {
    const accepted = new Map<string, number>();
    for (const o of outcomes) if (o.kind === "accepted") accepted.set(o.id, o.batches);
    const expected = [...accepted.values()].reduce((a, b) => a + b, 0);
    await waitFor("every accepted upload to be published", async () => {
      const { rows } = await stack.env.sql.query(
        "select count(*)::int as n from uploads where status = 'queued' and batches_published < batches_total",
      );
      return rows[0].n === 0;
    });

    const connection = await amqp.connect(stack.env.config.rabbitmqUrl);
    try {
      const channel = await connection.createChannel();
      const queue = queueNames(stack.env.config.namespace).batches;
      assert.equal((await channel.checkQueue(queue)).messageCount, expected);
      const seen = new Map<string, number>();
      let received = 0;
      const consumer = await channel.consume(
        queue,
        (message) => {
          if (!message) return;
          const { uploadId } = decodeHeaders(message.properties.headers ?? {});
          seen.set(uploadId, (seen.get(uploadId) ?? 0) + 1);
          received++;
        },
        { noAck: true },
      );
      await waitFor("every message to be read", async () => received === expected);
      await channel.cancel(consumer.consumerTag);
      assert.deepEqual(seen, new Map([...accepted].filter(([, batches]) => batches > 0)));
    } finally {
      await connection.close();
    }

    const { rows } = await stack.env.sql.query("select id, status from uploads");
    const status = new Map(rows.map((r) => [r.id, r.status]));
    for (const o of outcomes) {
      if (o.kind === "rejected" && o.id) assert.equal(status.get(o.id), "rejected", o.id);
    }
    assert.ok(
      rows.every((r) => ["queued", "rejected"].includes(r.status)),
      "no upload is left half received",
    );
    await waitFor("stored files to be removed once published", async () => {
      return (await readdir(stack.env.config.uploadDir)).length === 0;
    });
  });
});

describe("the api with a worker", () => {
  const stack = stackForTests(LIMITS);

  test("lands every accepted upload whole, and nothing of a rejected one", async () => {
    const accepted: string[] = [];
    const rejected: string[] = [];
    // Random bodies are accepted or rejected by chance: rounds go on until the sample holds
    // enough of each, so that both halves of the check below are exercised.
    for (let round = 0; round < 20 && (accepted.length <= 10 || rejected.length <= 10); round++) {
      await fc.assert(
        fc.asyncProperty(hostileUpload, async (upload) => {
          const outcome = await send(stack.api.url, upload.query, requestFor(upload));
          if (outcome.kind === "accepted") accepted.push(outcome.id);
          else if (outcome.id) rejected.push(outcome.id);
        }),
        { numRuns: 50 },
      );
    }
    assert.ok(
      accepted.length > 10 && rejected.length > 10,
      `${accepted.length} accepted, ${rejected.length} rejected`,
    );

    await waitFor("every accepted upload to complete", async () => {
      const { rows } = await stack.env.sql.query(
        "select count(*)::int as n from uploads where id = any($1) and status <> 'completed'",
        [accepted],
      );
      return rows[0].n === 0;
    });
    const { rows } = await stack.env.sql.query(
      `select u.id, u.rows_total, u.row_errors, u.rows_landed,
         (select count(*)::int from upload_rows r where r.upload_id = u.id) as landed,
         (select count(*)::int from row_errors e where e.upload_id = u.id) as errors
       from uploads u where u.id = any($1)`,
      [accepted],
    );
    for (const r of rows) {
      assert.equal(r.landed, r.rows_landed, r.id);
      assert.equal(r.errors, r.row_errors, r.id);
      assert.equal(r.landed + r.errors, r.rows_total, r.id);
    }

    const traces = await stack.env.sql.query(
      `select (select count(*)::int from upload_rows where upload_id = any($1)) as rows,
              (select count(*)::int from upload_batches where upload_id = any($1)) as batches`,
      [rejected],
    );
    assert.deepEqual(traces.rows[0], { rows: 0, batches: 0 });
    for (const id of rejected.slice(0, 25))
      assert.deepEqual(await listBatchObjects(stack.env, id), []);
  });

  test("header names travel only as data: SQL, quotes and prototype names land as plain keys", async () => {
    const header = [
      'x"; DROP TABLE uploads;--',
      "$$",
      "'",
      "\\",
      "__proto__",
      "constructor",
      "row_number",
      '{"a":1}',
    ];
    const rows = [
      ["'; DELETE FROM upload_rows; --", "$$ $1 $$", "\\'", "{}", "null", "", "0007", "]"],
      ['"', "\u2028", "a,b", "line\nbreak", "true", "[]", " ", "é"],
    ];
    const field = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
    const csv = `${[header, ...rows].map((r) => r.map(field).join(",")).join("\n")}\n`;
    const accepted = await acceptedUpload(stack.api.url, csv);
    assert.deepEqual(accepted.columns, header);
    const { id } = accepted;
    await waitFor("the upload to complete", async () => {
      const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
      return body.status === "completed";
    });

    // Key by key, as PostgreSQL holds them, not as a JavaScript object would show them.
    const stored = await stack.env.sql.query(
      `select row_number::int as row, key, value
       from upload_rows, json_each_text(data)
       where upload_id = $1 order by row_number, key collate "C"`,
      [id],
    );
    const expected = rows.flatMap((values, r) =>
      header
        .map((key, c) => ({ row: r + 1, key, value: values[c] }))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    );
    assert.deepEqual(stored.rows, expected);

    const [key] = await listBatchObjects(stack.env, id);
    const batch = await getObjectJson(stack.env, key as string);
    assert.deepEqual(batch.columns, header);
    assert.deepEqual(
      batch.rows.map((r: { values: string[] }) => r.values),
      rows,
    );

    const intact = await stack.env.sql.query(
      "select to_regclass('uploads') is not null as uploads, (select count(*)::int from uploads where id = $1) as mine",
      [id],
    );
    assert.deepEqual(intact.rows[0], { uploads: true, mine: 1 });
  });
});
