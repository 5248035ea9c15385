// When PostgreSQL, Redis or RabbitMQ keeps its connections open but stops answering, every
// route of the api still answers: 503 ServiceUnavailable with Retry-After, naming the
// service that did not answer, and readiness names it too. Once the service answers
// again, so does the api.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import { freePort, startProgram } from "./support/program.ts";
import { type InProcess, startInProcess, type TestEnv, testEnv, waitFor } from "./support/stack.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

let env: TestEnv;
let postgres: TcpProxy;
let redis: TcpProxy;
let rabbitmq: TcpProxy;
let api: InProcess;
let uploadId: string;
before(async () => {
  env = await testEnv();
  postgres = await startTcpProxy({ host: "127.0.0.1", port: 5432 });
  redis = await startTcpProxy({ host: "127.0.0.1", port: 6379 });
  rabbitmq = await startTcpProxy({ host: "127.0.0.1", port: 5672 });
  const config = loadConfig({
    ...env.env,
    DATABASE_URL: postgres.via(env.env.DATABASE_URL as string),
    REDIS_URL: redis.via("redis://127.0.0.1:6379"),
    RABBITMQ_URL: rabbitmq.via("amqp://guest:guest@127.0.0.1:5672"),
    CONNECT_TIMEOUT_MS: "2000",
    COMMAND_TIMEOUT_MS: "2000",
  });
  api = await startInProcess({ ...env, config }, { worker: false });
  // One row with a field too few, so that the upload has a row error to list.
  const accepted = await call("POST", "/uploads", "id,name\n1,a\n2\n");
  assert.equal(accepted.status, 202, accepted.text);
  uploadId = accepted.body.id;
});
after(async () => {
  await api?.stop();
  await postgres?.close();
  await redis?.close();
  await rabbitmq?.close();
  await env?.cleanup();
});

async function call(method: string, path: string, body?: string) {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "text/csv" },
    body,
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: json };
}

function assertUnavailable(answer: Awaited<ReturnType<typeof call>>, service: string) {
  assert.equal(answer.status, 503, answer.text);
  assert.equal(answer.body.error.code, "ServiceUnavailable", answer.text);
  assert.equal(answer.body.error.details?.service, service, answer.text);
  assert.ok(answer.body.error.message.includes(service), answer.text);
  assert.equal(answer.headers.get("retry-after"), "5");
  assert.doesNotMatch(answer.text, /guest|127\.0\.0\.1/, "no credentials or addresses");
}

async function assertNotReady(service: string) {
  const answer = await call("GET", "/readyz");
  assert.equal(answer.status, 503, answer.text);
  assert.deepEqual(answer.body, { status: "not ready", unavailable: [service] });
}

const ready = () =>
  waitFor("the api to be ready", async () => (await call("GET", "/readyz")).status === 200);

describe("PostgreSQL accepts connections but never answers", () => {
  before(() => postgres.stall());
  after(async () => {
    await postgres.restore();
    await ready();
  });

  test("a new upload is 503 naming PostgreSQL", async () => {
    assertUnavailable(await call("POST", "/uploads", "id,name\n1,a\n"), "PostgreSQL");
  });

  test("listing uploads is 503 naming PostgreSQL", async () => {
    assertUnavailable(await call("GET", "/uploads"), "PostgreSQL");
  });

  test("cancelling is 503 naming PostgreSQL", async () => {
    assertUnavailable(await call("DELETE", `/uploads/${uploadId}`), "PostgreSQL");
  });

  test("the row errors are 503 naming PostgreSQL", async () => {
    assertUnavailable(await call("GET", `/uploads/${uploadId}/errors`), "PostgreSQL");
  });

  test("readiness is 503 naming PostgreSQL; health is about the process and stays 200", async () => {
    await assertNotReady("PostgreSQL");
    assert.equal((await call("GET", "/healthz")).status, 200);
  });
});

describe("Redis accepts connections but never answers", () => {
  before(() => redis.stall());
  after(async () => {
    await redis.restore();
    await ready();
  });

  test("an upload's status is 503 naming Redis", async () => {
    assertUnavailable(await call("GET", `/uploads/${uploadId}`), "Redis");
  });

  test("a new upload is 503 naming Redis", async () => {
    assertUnavailable(await call("POST", "/uploads", "id,name\n1,a\n"), "Redis");
  });

  test("cancelling is 503 naming Redis", async () => {
    assertUnavailable(await call("DELETE", `/uploads/${uploadId}`), "Redis");
  });

  test("the row errors are 503 naming Redis", async () => {
    assertUnavailable(await call("GET", `/uploads/${uploadId}/errors`), "Redis");
  });

  test("the progress stream is 503 naming Redis", async () => {
    assertUnavailable(await call("GET", `/uploads/${uploadId}/events`), "Redis");
  });

  test("readiness is 503 naming Redis; health stays 200", async () => {
    await assertNotReady("Redis");
    assert.equal((await call("GET", "/healthz")).status, 200);
  });
});

describe("RabbitMQ accepts connections but never answers", () => {
  before(() => rabbitmq.stall());
  after(async () => {
    await rabbitmq.restore();
    await ready();
  });

  test("readiness is 503 naming RabbitMQ; health stays 200", async () => {
    await assertNotReady("RabbitMQ");
    assert.equal((await call("GET", "/healthz")).status, 200);
  });
});

test("once every service answers again, the api serves again", async () => {
  await ready();
  const accepted = await call("POST", "/uploads", "id,name\n1,a\n");
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal((await call("GET", `/uploads/${accepted.body.id}`)).status, 200);
  assert.equal((await call("GET", `/uploads/${uploadId}/errors`)).status, 200);
});

test("publishing to a RabbitMQ that stops answering gives up and resumes once it answers", async () => {
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
    const mine = (line: string) => line.includes(`"uploadId":"${id}"`);
    await program.line(
      "publishing to give up on the silent RabbitMQ",
      (line) => mine(line) && line.includes('"publishing interrupted; resuming"'),
    );
    await broker.restore();
    await program.line(
      "publishing to finish",
      (line) => mine(line) && line.includes('"all batches published"'),
    );
  } finally {
    await program.stop();
    await broker.close();
    await own.cleanup();
  }
});
