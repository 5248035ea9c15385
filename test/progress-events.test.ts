// Live progress: GET /uploads/:id/events follows an upload from the state it is in to its
// final status, fed by Redis pub/sub through one subscriber connection per api process.
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import type { ProgressEvent } from "../src/api/progress/progress-event.ts";
import { createProgressHub } from "../src/api/progress/progress-hub.ts";
import { openProgressStream } from "../src/api/progress/progress-stream.ts";
import { readSse, type SseMessage } from "../src/cli/sse.ts";
import {
  insertUploadWithinLimit,
  markCancelled,
  markQueued,
  markValidating,
} from "../src/core/db/uploads.repository.ts";
import { createLogger } from "../src/core/logger.ts";
import { openRuntime, type Runtime } from "../src/core/program/runtime.ts";
import { sampleCsv } from "./support/csv-samples.ts";
import {
  acceptedUpload,
  getJson,
  type InProcess,
  startInProcess,
  startWorkerInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const log = createLogger("test", "silent");

describe("a progress stream", () => {
  let env: TestEnv;
  let runtime: Runtime;
  before(async () => {
    env = await testEnv();
    runtime = await openRuntime(env.config, log);
  });
  after(async () => {
    await runtime.close();
    await env.cleanup();
  });

  /** A hub on its own Redis connection, as an api process has one. */
  const startHub = () =>
    createProgressHub(
      runtime.redis.duplicate({ enableOfflineQueue: true }),
      runtime.status.channel,
      log,
      { pingMs: 1000, subscribeMs: 5000 },
    );

  const subscribers = async (id: string) =>
    Number(
      ((await runtime.redis.pubsub("NUMSUB", runtime.status.channel(id))) as [string, number])[1],
    );

  test("sends the current state first, then each change, heartbeats between, and ends at the final status", async () => {
    const hub = startHub();
    const id = "7d0c9a52-1b7e-4b0f-9d51-5a3f1e2c0001";
    await insertUploadWithinLimit(runtime.db, { id, tenant: "default", filename: "a.csv" }, 100);
    await runtime.status.refresh(id);
    const stream = await openProgressStream({
      uploadId: id,
      hub,
      current: () => runtime.status.get(id),
      heartbeatMs: 30,
    });
    const messages: SseMessage[] = [];
    const reading = (async () => {
      for await (const message of readSse(stream)) messages.push(message);
    })();
    const events = () =>
      messages.filter((m) => m.event === "progress").map((m) => JSON.parse(m.data));

    await waitFor("a heartbeat", async () => messages.some((m) => m.comment === "heartbeat"));
    assert.equal(events()[0].status, "received");

    await markValidating(runtime.db, id);
    await runtime.status.refresh(id);
    await markQueued(runtime.db, id, {
      bytes: 10,
      sha256: "0".repeat(64),
      encoding: "utf-8",
      delimiter: ",",
      columns: ["a"],
      rowsTotal: 3000,
      rowErrors: 0,
      blankLines: 0,
      batchesTotal: 3,
    });
    await runtime.status.refresh(id);
    // As a worker does: PostgreSQL first, then the live view.
    await env.sql.query(
      "update uploads set status = 'processing', batches_landed = 1, rows_landed = 1000, last_progress_at = now() where id = $1",
      [id],
    );
    await runtime.status.advance(id, { batchesLanded: 1, rowsLanded: 1000, status: "processing" });
    // The same state published again tells the client nothing new.
    await runtime.status.refresh(id);
    await waitFor("the processing event", async () =>
      events().some((e) => e.status === "processing"),
    );
    await markCancelled(runtime.db, id);
    await runtime.status.refresh(id);
    await reading;

    assert.deepEqual(
      events().map((e) => [e.status, e.batches.landed, e.batches.total]),
      [
        ["received", 0, null],
        ["validating", 0, null],
        ["queued", 0, 3],
        ["processing", 1, 3],
        ["cancelled", 1, 3],
      ],
    );
    assert.equal(events()[3].rowsLanded, 1000);
    assert.equal(typeof events()[3].secondsLeft, "number");
    assert.equal(hub.listeners(), 0);
    await waitFor("the channel to be unsubscribed", async () => (await subscribers(id)) === 0);
    await hub.close();
  });

  test("stops listening when the client goes away, and one connection serves every stream", async () => {
    const hub = startHub();
    const id = "7d0c9a52-1b7e-4b0f-9d51-5a3f1e2c0002";
    await insertUploadWithinLimit(runtime.db, { id, tenant: "default", filename: null }, 100);
    const open = () =>
      openProgressStream({
        uploadId: id,
        hub,
        current: () => runtime.status.get(id),
        heartbeatMs: 1000,
      });
    const [first, second] = await Promise.all([open(), open()]);
    assert.equal(hub.listeners(), 2);
    assert.equal(await subscribers(id), 1, "one subscription for both streams");

    first.destroy();
    await once(first, "close");
    assert.equal(hub.listeners(), 1);
    assert.equal(await subscribers(id), 1, "still subscribed for the other stream");
    second.destroy();
    await once(second, "close");
    assert.equal(hub.listeners(), 0);
    await waitFor("the channel to be unsubscribed", async () => (await subscribers(id)) === 0);
    await hub.close();
  });

  test("closing the hub ends every stream, so an HTTP server can close", async () => {
    const hub = startHub();
    const id = "7d0c9a52-1b7e-4b0f-9d51-5a3f1e2c0003";
    await insertUploadWithinLimit(runtime.db, { id, tenant: "default", filename: null }, 100);
    const stream = await openProgressStream({
      uploadId: id,
      hub,
      current: () => runtime.status.get(id),
      heartbeatMs: 1000,
    });
    const ended = new Promise((resolve) => stream.once("end", resolve));
    stream.resume();
    await hub.close();
    await ended;
  });
});

describe("GET /uploads/:id/events", () => {
  let env: TestEnv;
  let stack: InProcess;
  before(async () => {
    env = await testEnv({ BATCH_SIZE: "100", WORKER_PREFETCH: "2" });
    // No worker yet: the upload waits in the queue until the test starts one.
    stack = await startInProcess(env, { worker: false });
  });
  after(async () => {
    await stack.stop();
    await env.cleanup();
  });

  test("streams an upload's progress from queued to completed, then ends", async () => {
    const { id } = await acceptedUpload(stack.url, sampleCsv(20_000).csv);

    const response = await fetch(`${stack.url}/uploads/${id}/events`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events: ProgressEvent[] = [];
    const reading = (async () => {
      for await (const message of readSse(response.body as ReadableStream<Uint8Array>)) {
        if (message.event === "progress") events.push(JSON.parse(message.data));
      }
    })();
    await waitFor("the current state", async () => events.length > 0);
    assert.equal(events[0]?.status, "queued");
    assert.equal(events[0]?.batches.landed, 0);
    assert.equal(events[0]?.batches.total, 200);

    const worker = await startWorkerInProcess(env, { beside: stack });
    try {
      await reading;
    } finally {
      await worker.stop();
    }

    const last = events.at(-1);
    assert.equal(last?.status, "completed");
    assert.equal(last?.rowsLanded, 20_000);
    assert.deepEqual(last?.batches, { landed: 200, total: 200 });
    assert.equal(last?.secondsLeft, 0);
    const moving = events.filter((e) => e.status === "processing");
    assert.ok(moving.length > 0, "progress while the batches land");
    assert.ok(moving.some((e) => typeof e.secondsLeft === "number"));
    const landed = events.map((e) => e.batches.landed);
    assert.deepEqual(
      landed,
      [...landed].sort((a, b) => a - b),
      "progress never goes back",
    );
    assert.equal(stack.api.progress.listeners(), 0);

    // An EventSource reconnecting after the end is told there is nothing more.
    const again = await fetch(`${stack.url}/uploads/${id}/events`, {
      headers: { "last-event-id": "200" },
    });
    assert.equal(again.status, 204);
    // Without Last-Event-ID, a finished upload's stream is its final state alone.
    const replay = await fetch(`${stack.url}/uploads/${id}/events`);
    const replayed: SseMessage[] = [];
    for await (const message of readSse(replay.body as ReadableStream<Uint8Array>))
      replayed.push(message);
    assert.deepEqual(
      replayed.map((m) => JSON.parse(m.data).status),
      ["completed"],
    );
  });

  test("a client that goes away stops its stream", async () => {
    // The worker of the test above has stopped: this upload stays queued.
    const accepted = await getJson(`${stack.url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: sampleCsv(10).csv,
    });
    const abort = new AbortController();
    const response = await fetch(`${stack.url}/uploads/${accepted.body.id}/events`, {
      signal: abort.signal,
    });
    const first = await readSse(response.body as ReadableStream<Uint8Array>).next();
    assert.equal(JSON.parse(first.value?.data ?? "{}").status, "queued");
    assert.equal(stack.api.progress.listeners(), 1);
    const open = async () =>
      (await fetch(`${stack.url}/metrics`).then((r) => r.text())).match(
        /^sluice_progress_streams\S* (\d+)/m,
      )?.[1];
    assert.equal(await open(), "1");

    abort.abort();
    await waitFor("the stream to stop listening", async () => stack.api.progress.listeners() === 0);
    await waitFor("the open streams gauge to drop", async () => (await open()) === "0");
  });

  test("one connection carries stream after stream, as a page following uploads does, and gathers nothing", async () => {
    const { id } = await acceptedUpload(stack.url, sampleCsv(10).csv);
    await getJson(`${stack.url}/uploads/${id}`, { method: "DELETE" });
    const warnings: string[] = [];
    const warned = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", warned);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      // A finished upload's stream is its final state alone: each ends at once, and the
      // next goes out on the same connection.
      for (let i = 0; i < 15; i++) {
        const request = http.get(`${stack.url}/uploads/${id}/events`, { agent });
        const [response] = (await once(request, "response")) as [http.IncomingMessage];
        sockets.add(request.socket);
        assert.equal(response.statusCode, 200);
        response.resume();
        await once(response, "end");
      }
      // Warnings are emitted on a later turn.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      agent.destroy();
      process.off("warning", warned);
    }
    assert.equal(sockets.size, 1, "one connection");
    assert.deepEqual(warnings, []);
  });

  test("an unknown upload has no stream", async () => {
    const response = await getJson(
      `${stack.url}/uploads/00000000-0000-4000-8000-000000000000/events`,
    );
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, "NotFound");
  });
});
