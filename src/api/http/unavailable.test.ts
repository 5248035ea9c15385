import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createConnection, createServer, type Socket } from "node:net";
import { test } from "node:test";
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import amqp from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import { failure } from "../../../test/support/failure.ts";
import { watchedClient } from "../../core/db/watched-client.ts";
import { DependencyLostError, DependencyTimeoutError } from "../../core/dependencies.ts";
import { watchRedis } from "../../core/status/watched-redis.ts";
import { answerOf } from "./error-answers.ts";
import { isDependencyUnavailable, unavailableAnswer } from "./unavailable.ts";

/** A loopback port that refuses connections. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("each client's own error for a service that refuses connections is a dependency failure", async () => {
  const port = await closedPort();
  const pgError = await failure(() => new pg.Client({ host: "127.0.0.1", port }).connect());
  assert.ok(isDependencyUnavailable(pgError), String(pgError));

  const amqpError = await failure(() => amqp.connect(`amqp://127.0.0.1:${port}`));
  assert.ok(isDependencyUnavailable(amqpError), String(amqpError));

  // Commands queued for a connection, until the reconnection attempts are spent.
  const queuing = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 });
  queuing.on("error", () => undefined);
  const redisError = await failure(() => queuing.get("x"));
  assert.equal((redisError as Error).name, "MaxRetriesPerRequestError");
  assert.ok(isDependencyUnavailable(redisError));
  queuing.disconnect();

  // Commands refused at once while there is no connection, as Sluice's client does.
  const failingFast = watchRedis(
    new Redis({ host: "127.0.0.1", port, enableOfflineQueue: false }),
    `redis://127.0.0.1:${port}`,
    1000,
  );
  failingFast.on("error", () => undefined);
  const offlineError = await failure(() => failingFast.get("x"));
  assert.ok(offlineError instanceof DependencyLostError, String(offlineError));
  assert.equal(unavailableAnswer(offlineError)?.message, "Redis is unreachable; retry");
  failingFast.disconnect();
});

test("a service that did not answer in time is named in the 503, without its address", () => {
  const silent = DependencyTimeoutError.silent("PostgreSQL", "postgres://u:pw@db.internal/x", 100);
  const answer = unavailableAnswer(new Error("could not load", { cause: silent }));
  assert.deepEqual(answer?.toJSON(), {
    error: {
      code: "ServiceUnavailable",
      message: "PostgreSQL did not answer in time; retry",
      details: { service: "PostgreSQL" },
    },
  });
  assert.ok(answer);
  assert.deepEqual(answerOf(answer), { status: 503, headers: { "retry-after": "5" } });
  assert.equal(unavailableAnswer(new TypeError("x")), undefined);
});

test("a statement PostgreSQL cancelled for its timeout is PostgreSQL not answering in time", async () => {
  const client = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await client.connect();
  const err = await failure(() => client.query("set statement_timeout = 50; select pg_sleep(5)"));
  await client.end();
  assert.equal(unavailableAnswer(err)?.message, "PostgreSQL did not answer in time; retry");
});

test("PostgreSQL's shutdown, start-up and connection errors are dependency failures", () => {
  for (const code of ["57P01", "57P02", "57P03", "53300", "08006", "08001", "08P01"]) {
    assert.ok(isDependencyUnavailable(Object.assign(new Error("pg"), { code })), code);
  }
});

/** A loopback port in front of PostgreSQL whose connections the test can end cleanly. */
async function closingProxy(): Promise<{ port: number; endAll(): void; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: 5432 });
    sockets.add(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as { port: number }).port,
    // A FIN and no error: pg learns only that the connection ended.
    endAll: () => {
      for (const socket of sockets) socket.end();
    },
    close: () => server.close(),
  };
}

test("a PostgreSQL connection that ends under a query, and the queries after, fail naming PostgreSQL", async () => {
  const proxy = await closingProxy();
  const url = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
  const client = new (watchedClient(url, { connectMs: 5000, answerMs: undefined }))({
    connectionString: url,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const running = failure(() => client.query("select pg_sleep(30)"));
    proxy.endAll();
    const ended = await running;
    assert.ok(ended instanceof DependencyLostError, String(ended));
    assert.equal(unavailableAnswer(ended)?.message, "PostgreSQL is unreachable; retry");
    const after = await failure(() => client.query("select 1"));
    assert.ok(after instanceof DependencyLostError, String(after));
    assert.equal(unavailableAnswer(after)?.message, "PostgreSQL is unreachable; retry");
  } finally {
    proxy.close();
  }
});

test("an error of the api's own that happens to read like a client's is a fault, not a 503", () => {
  for (const message of [
    "Connection terminated unexpectedly",
    "Client has encountered a connection error and is not queryable",
    "Stream isn't writeable and enableOfflineQueue options is false",
  ]) {
    assert.equal(unavailableAnswer(new Error(message)), undefined, message);
  }
});

test("a dependency failure wrapped in another error still counts", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  assert.ok(isDependencyUnavailable(new Error("could not load", { cause: refused })));
  assert.ok(isDependencyUnavailable(new AggregateError([new Error("x"), refused])));
  assert.ok(isDependencyUnavailable(new amqp.IllegalOperationError("Channel closed", "")));
});

test("faults of the api itself and query errors are not dependency failures", () => {
  const cyclic: Error & { cause?: unknown } = new Error("loop");
  cyclic.cause = cyclic;
  for (const err of [
    new Error("Cannot use a pool after calling end on the pool"),
    new TypeError("undefined is not a function"),
    Object.assign(new Error("duplicate key"), { code: "23505" }),
    Object.assign(new Error("relation does not exist"), { code: "42P01" }),
    Object.assign(new Error("no such file"), { code: "ENOENT" }),
    cyclic,
    "a string",
    undefined,
    null,
  ]) {
    assert.equal(isDependencyUnavailable(err), false, String(err));
  }
});

/** An S3 client as Sluice makes one (core/storage/s3.ts), against `endpoint`. */
function s3Client(endpoint: string, ms: number): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: ms, socketTimeout: ms },
  });
}

test("the S3 client's own errors for an endpoint that refuses or says nothing name S3", async () => {
  const refusing = s3Client(`http://127.0.0.1:${await closedPort()}`, 1000);
  const refused = await failure(() => refusing.send(new HeadBucketCommand({ Bucket: "b" })));
  assert.equal(unavailableAnswer(refused)?.message, "S3 is unreachable; retry", String(refused));

  // Takes the connection and answers nothing.
  const held = new Set<Socket>();
  const server = createServer((socket) => held.add(socket)).listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    const { port } = server.address() as { port: number };
    const silent = s3Client(`http://127.0.0.1:${port}`, 200);
    const timedOut = await failure(() => silent.send(new HeadBucketCommand({ Bucket: "b" })));
    assert.equal(
      unavailableAnswer(timedOut)?.message,
      "S3 did not answer in time; retry",
      String(timedOut),
    );
  } finally {
    for (const socket of held) socket.destroy();
    server.close();
  }
});

test("an S3 answer that refuses the request itself is no outage", async () => {
  const notS3 = createHttpServer((_, response) => {
    response.writeHead(403, { "content-type": "application/xml" });
    response.end("<Error><Code>AccessDenied</Code><Message>no</Message></Error>");
  }).listen(0, "127.0.0.1");
  await once(notS3, "listening");
  try {
    const { port } = notS3.address() as { port: number };
    const client = s3Client(`http://127.0.0.1:${port}`, 1000);
    const denied = await failure(() => client.send(new HeadBucketCommand({ Bucket: "b" })));
    assert.equal(unavailableAnswer(denied), undefined, String(denied));
  } finally {
    notS3.close();
  }
});
