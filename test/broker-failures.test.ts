// When RabbitMQ cannot be reached, or its connection goes in the middle of a request, the api
// answers 503 ServiceUnavailable naming RabbitMQ, with Retry-After, not a 500; amqplib says
// so in its messages alone, so the api tells it from the connection's state. The broker
// stays up for every other test: the connection goes through a proxy this file cuts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startProxiedApi } from "./support/proxied-api.ts";
import { apiForTests, callApi, waitFor } from "./support/stack.ts";

let uploadId: string;
const stack = apiForTests(
  {},
  (env) =>
    startProxiedApi(env, ["RabbitMQ"], (proxied) => ({
      // No heartbeats: what the api sends RabbitMQ while it is stalled is the request alone.
      RABBITMQ_URL: `${proxied.RABBITMQ_URL}?heartbeat=0`,
      // A lost connection is answered as such, not by a wait for an answer running out.
      COMMAND_TIMEOUT_MS: "120000",
    })),
  async ({ env }): Promise<void> => {
    const accepted = await call("POST", "/uploads", "id,name\n1,a\n");
    assert.equal(accepted.status, 202, accepted.text);
    uploadId = accepted.body.id;
    // Its publishing done and its channel closed: the api has nothing more to say to RabbitMQ.
    await waitFor("the upload's publishing to end", async () => {
      const { rows } = await env.sql.query(
        `select batches_published = batches_total and publishing_until <= now() as done
           from uploads where id = $1`,
        [uploadId],
      );
      return rows[0]?.done === true;
    });
  },
);

const call = (method: string, path: string, body?: string) =>
  callApi(stack.api.url, method, path, body);
const redrive = () => call("POST", `/uploads/${uploadId}/redrive`);

function assertRabbitMqUnreachable(answer: Awaited<ReturnType<typeof call>>) {
  assert.equal(answer.status, 503, answer.text);
  assert.deepEqual(answer.body.error, {
    code: "ServiceUnavailable",
    message: "RabbitMQ is unreachable; retry",
    details: { service: "RabbitMQ" },
  });
  assert.equal(answer.headers.get("retry-after"), "5");
}

const rabbitMqGone = () =>
  waitFor("the api to see RabbitMQ gone", async () => {
    const answer = await call("GET", "/readyz?verbose");
    return answer.status === 503 && answer.body.unavailable?.includes("RabbitMQ");
  });
const ready = () =>
  waitFor("the api to be ready", async () => (await call("GET", "/readyz?verbose")).status === 200);

test("a re-drive whose RabbitMQ connection goes under it is 503 naming RabbitMQ", async () => {
  stack.api.proxies.RabbitMQ.stall();
  const sent = stack.api.proxies.RabbitMQ.sent();
  const answering = redrive();
  // The re-drive's first request to RabbitMQ is on its way, unanswered; now the connection goes.
  await sent;
  await stack.api.proxies.RabbitMQ.cut();
  assertRabbitMqUnreachable(await answering);
});

test("a re-drive while RabbitMQ refuses connections is 503 naming RabbitMQ as unreachable", async () => {
  await rabbitMqGone();
  assertRabbitMqUnreachable(await redrive());
});

test("once RabbitMQ is back, the re-drive answers again", async () => {
  await stack.api.proxies.RabbitMQ.restore();
  await ready();
  const answer = await redrive();
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(answer.body.redriven, { batches: 0 });
});
