// When PostgreSQL, Redis or RabbitMQ keeps its connections open but stops answering, every
// route of the api still answers: 503 ServiceUnavailable with Retry-After, naming the
// service that did not answer, and readiness names it too. Once the service answers
// again, so does the api.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import amqp from "amqplib";
import { readSse } from "../src/cli/sse.ts";
import { connectBroker } from "../src/core/broker/broker.ts";
import { publishConfirmed } from "../src/core/broker/confirm.ts";
import { redriveDeadLetters } from "../src/core/broker/dead-letters.ts";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { DependencyTimeoutError } from "../src/core/dependencies.ts";
import { createLogger } from "../src/core/logger.ts";
import { failure } from "./support/failure.ts";
import { freePort, startProgram } from "./support/program.ts";
import { startProxiedApi } from "./support/proxied-api.ts";
import { apiForTests, callApi, testEnv, waitFor } from "./support/stack.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";

let uploadId: string;
const stack = apiForTests(
  {},
  (env) =>
    startProxiedApi(env, ["PostgreSQL", "Redis", "RabbitMQ"], {
      CONNECT_TIMEOUT_MS: "2000",
      COMMAND_TIMEOUT_MS: "2000",
    }),
  async (): Promise<void> => {
    // One row with a field too few, so that the upload has a row error to list.
    const accepted = await call("POST", "/uploads", "id,name\n1,a\n2\n");
    assert.equal(accepted.status, 202, accepted.text);
    uploadId = accepted.body.id;
  },
);

const call = (method: string, path: string, body?: string) =>
  callApi(stack.api.url, method, path, body);

function assertUnavailable(answer: Awaited<ReturnType<typeof call>>, service: string) {
  assert.equal(answer.status, 503, answer.text);
  assert.equal(answer.body.error.code, "ServiceUnavailable", answer.text);
  assert.equal(answer.body.error.details?.service, service, answer.text);
  // Silent, as the other failures of these services say when they are not.
  assert.equal(answer.body.error.message, `${service} did not answer in time; retry`, answer.text);
  assert.equal(answer.headers.get("retry-after"), "5");
  assert.doesNotMatch(answer.text, /guest|127\.0\.0\.1/, "no credentials or addresses");
}

async function assertNotReady(service: string) {
  const answer = await call("GET", "/readyz?verbose");
  assert.equal(answer.status, 503, answer.text);
  assert.deepEqual(answer.body, { status: "not ready", unavailable: [service] });
}

/** The routes a stalled service fails, by what the client asks. */
const requests = {
  "an upload's status": () => call("GET", `/uploads/${uploadId}`),
  "a new upload": () => call("POST", "/uploads", "id,name\n1,a\n"),
  "listing uploads": () => call("GET", "/uploads"),
  cancelling: () => call("DELETE", `/uploads/${uploadId}`),
  "listing the row errors": () => call("GET", `/uploads/${uploadId}/errors`),
  "the progress stream": () => call("GET", `/uploads/${uploadId}/events`),
};

/** One test per request: each is 503 naming `service`. */
function unavailableFor(service: string, asked: Array<keyof typeof requests>) {
  for (const request of asked) {
    test(`${request} is 503 naming ${service}`, async () => {
      assertUnavailable(await requests[request](), service);
    });
  }
}

const ready = () =>
  waitFor("the api to be ready", async () => (await call("GET", "/readyz?verbose")).status === 200);

/** The requests each stalled service fails; readiness names it, and health stays 200. */
const failedWhenStalled: Record<
  "PostgreSQL" | "Redis" | "RabbitMQ",
  Array<keyof typeof requests>
> = {
  PostgreSQL: ["a new upload", "listing uploads", "cancelling", "listing the row errors"],
  Redis: [
    "an upload's status",
    "a new upload",
    "cancelling",
    "listing the row errors",
    "the progress stream",
  ],
  RabbitMQ: [],
};

for (const service of ["PostgreSQL", "Redis", "RabbitMQ"] as const) {
  describe(`${service} accepts connections but never answers`, () => {
    before(() => stack.api.proxies[service].stall());
    after(async () => {
      await stack.api.proxies[service].restore();
      await ready();
    });

    unavailableFor(service, failedWhenStalled[service]);

    test(`readiness is 503 naming ${service}; health is about the process and stays 200`, async () => {
      await assertNotReady(service);
      assert.equal((await call("GET", "/healthz")).status, 200);
    });
  });
}

test("once every service answers again, the api serves again", async () => {
  await ready();
  const accepted = await call("POST", "/uploads", "id,name\n1,a\n");
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal((await call("GET", `/uploads/${accepted.body.id}`)).status, 200);
  assert.equal((await call("GET", `/uploads/${uploadId}/errors`)).status, 200);
});

test("an api whose RabbitMQ stops answering drops the connection, and publishes once it answers", async () => {
  // A database, queues and upload folder of its own: nothing else is waiting to be published.
  const own = await testEnv();
  const broker = await startTcpProxy({ host: "127.0.0.1", port: 5672 });
  const port = await freePort();
  const program = startProgram("src/api/main.ts", {
    ...own.env,
    LOG_LEVEL: "info",
    PORT: String(port),
    RABBITMQ_URL: broker.via("amqp://guest:guest@127.0.0.1:5672"),
    CONNECT_TIMEOUT_MS: "2000",
    COMMAND_TIMEOUT_MS: "2000",
  });
  try {
    await program.line("the api to listen", (line) => line.includes('"api listening"'));
    broker.stall();
    const accepted = await fetch(`http://127.0.0.1:${port}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: "id,name\n1,a\n",
    });
    assert.equal(accepted.status, 202);
    const { id } = (await accepted.json()) as { id: string };
    // Publishing waits for a connection that answers, whether it had started on the silent
    // one (its confirm or channel then fails) or not.
    await program.line("the silent connection to be given up", (line) =>
      line.includes('"RabbitMQ connection lost; reconnecting"'),
    );
    await broker.restore();
    await program.line(
      "publishing to finish",
      (line) => line.includes(`"uploadId":"${id}"`) && line.includes('"all batches published"'),
    );
  } catch (err) {
    // What the api said, to tell a slow machine from an api that held on.
    throw new Error(`${(err as Error).message}\n${program.stdout.join("\n")}`, { cause: err });
  } finally {
    await program.stop();
    await broker.close();
    await own.cleanup();
  }
});

/**
 * A broker connected through a proxy without heartbeats, so that only the wait for an answer
 * can end what the proxy stalls.
 */
async function stallableBroker(namespace: string) {
  const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5672 });
  const broker = await connectBroker(
    `${proxy.via("amqp://guest:guest@127.0.0.1:5672")}?heartbeat=0`,
    { namespace, maxAttempts: 1, retryBaseMs: 1000 },
    { connectMs: 2000, commandMs: 1000 },
    createLogger("test", "silent"),
  );
  return {
    proxy,
    broker,
    async close() {
      // Closed once it has reconnected: a close sent as the reset arrives may never end.
      const reconnected = new Promise((resolve) => broker.connection.once("connect", resolve));
      await proxy.restore();
      await reconnected;
      await broker.close();
      await proxy.close();
    },
  };
}

test("a publish that RabbitMQ never confirms fails, naming RabbitMQ, even without heartbeats", async () => {
  const queue = `test-confirm-${randomUUID()}`;
  const { proxy, broker, close } = await stallableBroker(queue);
  try {
    const model = await broker.connected();
    const channel = await model.createConfirmChannel();
    channel.on("error", () => undefined);
    await channel.assertQueue(queue, { autoDelete: true });
    proxy.stall();
    const failed = await publishConfirmed(
      channel,
      queue,
      Buffer.from("{}"),
      {},
      broker.confirmWithin,
    ).then(
      () => assert.fail("confirmed through a black hole"),
      (err: unknown) => err,
    );
    assert.ok(failed instanceof DependencyTimeoutError, String(failed));
    assert.equal(failed.dependency, "RabbitMQ");
    assert.match(
      failed.message,
      /^RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/?\?heartbeat=0 did not confirm a message within 1000 ms$/,
    );
  } finally {
    await close();
    const cleanup = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    const channel = await cleanup.createChannel();
    await channel.deleteQueue(queue);
    await cleanup.close();
  }
});

test("an open progress stream ends when Redis stops answering, and a new one is 503 until it answers", async () => {
  const own = await testEnv();
  // No worker: the upload stays queued, so its stream has no final event to end on.
  const stack = await startProxiedApi(own, ["Redis"], {
    CONNECT_TIMEOUT_MS: "2000",
    COMMAND_TIMEOUT_MS: "2000",
  });
  const proxy = stack.proxies.Redis;
  try {
    const accepted = await callApi(stack.url, "POST", "/uploads", "id,name\n1,a\n");
    assert.equal(accepted.status, 202, accepted.text);
    const response = await fetch(`${stack.url}/uploads/${accepted.body.id}/events`);
    assert.equal(response.status, 200);
    const events = readSse(response.body as AsyncIterable<Uint8Array>);
    assert.ok((await events.next()).value?.data, "the current state first");
    proxy.stall();
    // Only the subscriber's connection is in use, idle; nothing else asks Redis anything.
    // A stream that outlived Redis would leave this loop waiting: the test's own timeout
    // fails it.
    for await (const _ of events) {
      // heartbeats
    }
    const again = await callApi(stack.url, "GET", `/uploads/${accepted.body.id}/events`);
    assert.equal(again.status, 503, again.text);
    assert.equal(again.body.error.details?.service, "Redis", again.text);
    await proxy.restore();
    await waitFor("a progress stream once Redis answers", async () => {
      const next = await fetch(`${stack.url}/uploads/${accepted.body.id}/events`);
      await next.body?.cancel();
      return next.status === 200;
    });
  } finally {
    await stack.stop();
    await own.cleanup();
  }
});

test("a re-drive whose RabbitMQ stops answering fails, naming RabbitMQ, even without heartbeats", async () => {
  const namespace = `test-redrive-${randomUUID()}`;
  const { proxy, broker, close } = await stallableBroker(namespace);
  try {
    proxy.stall();
    // A re-drive left waiting on the silent broker would fail the test by its own timeout.
    const failed = await failure(() =>
      redriveDeadLetters(broker, namespace, { reopen: async () => true }),
    );
    assert.ok(failed instanceof DependencyTimeoutError, String(failed));
    assert.equal(failed.dependency, "RabbitMQ");
  } finally {
    await close();
    const cleanup = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    const channel = await cleanup.createChannel();
    const names = queueNames(namespace);
    for (const queue of [names.batches, names.dead, names.retry(1)])
      await channel.deleteQueue(queue);
    await cleanup.close();
  }
});
