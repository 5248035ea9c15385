import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { DependencyTimeoutError } from "../dependencies.ts";
import { bucketExists, createS3 } from "./s3.ts";

const TIMEOUTS = { connectMs: 1000, commandMs: 300 };

/** Sluice's S3 client, against an endpoint on this machine. */
const s3At = (port: number) =>
  createS3(
    {
      bucket: "b",
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      createBucket: false,
    },
    TIMEOUTS,
  );

async function listening(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as { port: number }).port;
}

test("a request S3 takes and never answers fails after one attempt, naming S3 and COMMAND_TIMEOUT_MS", async () => {
  const held = new Set<Socket>();
  const silent = createServer((socket) => {
    held.add(socket);
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
  });
  const port = await listening(silent);
  const s3 = s3At(port);
  try {
    const failed = await bucketExists(s3, "b").then(
      () => assert.fail("answered by a server that says nothing"),
      (err: unknown) => err,
    );
    // Another attempt would be another connection, and another COMMAND_TIMEOUT_MS of silence
    // before the caller hears anything.
    assert.equal(held.size, 1, "attempts made");
    assert.ok(failed instanceof DependencyTimeoutError, String(failed));
    assert.equal(failed.dependency, "S3");
    assert.equal(failed.message, `S3 at http://127.0.0.1:${port}/ did not answer within 300 ms`);
  } finally {
    s3.destroy();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test("an S3 that answers 503 once is asked again, and its next answer is the command's", async () => {
  let requests = 0;
  const flaky = createHttpServer((_, response) => {
    requests += 1;
    response.writeHead(requests === 1 ? 503 : 200).end();
  });
  const port = await listening(flaky);
  const s3 = s3At(port);
  try {
    assert.equal(await bucketExists(s3, "b"), true);
    assert.equal(requests, 2);
  } finally {
    s3.destroy();
    flaky.closeAllConnections();
    await new Promise((resolve) => flaky.close(resolve));
  }
});
