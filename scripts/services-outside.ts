// This machine's PostgreSQL, Redis and RabbitMQ and an S3 server, reached by a cluster's pods
// at an address of this machine: the services outside the cluster that the Tiltfile's
// `--services=outside` points Sluice at. Each forward is <port>=<host>:<port>, or <port>=s3
// for an s3rver of its own on loopback whose data goes when this stops. Connections arrive
// from loopback, so the services need listen nowhere else (and RabbitMQ's guest may log in).
// Usage: node scripts/services-outside.ts <address> <port>=<host:port|s3>...
// Prints "ready" once every forward listens; stops on SIGTERM or SIGINT.
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../src/core/logger.ts";
import { type LocalS3, startLocalS3 } from "../src/core/storage/local-s3.ts";
import { freePort } from "../test/support/program.ts";

const [address, ...specs] = process.argv.slice(2);
const forwards = specs.map((spec) => /^(\d+)=(s3|([^:]+):(\d+))$/.exec(spec));
if (!address || forwards.length === 0 || forwards.some((f) => f === null)) {
  console.error("usage: node scripts/services-outside.ts <address> <port>=<host:port|s3>...");
  process.exit(2);
}

let s3: LocalS3 | undefined;
const s3Dir = mkdtempSync(join(tmpdir(), "sluice-s3-outside-"));
const servers: Server[] = [];
for (const forward of forwards) {
  const [, listenPort, what, host, port] = forward as RegExpExecArray;
  let target = { host: host as string, port: Number(port) };
  if (what === "s3") {
    target = { host: "127.0.0.1", port: await freePort() };
    s3 = await startLocalS3(
      `http://${target.host}:${target.port}`,
      { accessKeyId: "test", secretAccessKey: "test" },
      s3Dir,
      createLogger("local-s3", "warn"),
    );
  }
  const server = createServer((client) => {
    const upstream = createConnection(target);
    // Either end going away ends the other: nothing is left half-open.
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(Number(listenPort), address);
  await once(server, "listening");
  servers.push(server);
  console.log(
    `${address}:${listenPort} → ${target.host}:${target.port}${what === "s3" ? " (s3rver)" : ""}`,
  );
}
console.log("ready");

let stopping = false;
const stop = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  // Open connections end with the process.
  for (const server of servers) server.close();
  await s3?.close();
  rmSync(s3Dir, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
