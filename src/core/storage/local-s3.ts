// A local S3-compatible server for development, standing in for LocalStack.

import { createRequire } from "node:module";
import { acceptsConnections } from "../dependencies.ts";
import type { Logger } from "../logger.ts";

const require = createRequire(import.meta.url);

type S3rverInstance = { run(): Promise<unknown>; close(): Promise<void> };
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

export type LocalS3 = Readonly<{ close(): Promise<void> }>;

/** s3rver is a development dependency: an install without them (`npm ci --omit=dev`) lacks it. */
function loadS3rver(endpoint: string): S3rverConstructor {
  try {
    return require("s3rver") as S3rverConstructor;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw err;
    throw new Error(
      `nothing listens on ${endpoint}, and the local S3 server (s3rver, a development dependency) is not installed: run npm install, or start an S3-compatible server there`,
      { cause: err },
    );
  }
}

/**
 * Starts s3rver on the endpoint's loopback port unless something already listens there,
 * and accepts the configured development credentials. Returns undefined when it started
 * nothing.
 */
export async function startLocalS3(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  directory: string,
  log: Logger,
): Promise<LocalS3 | undefined> {
  const url = new URL(endpoint);
  const port = Number(url.port || 80);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) return undefined;
  if (await acceptsConnections(url.hostname === "[::1]" ? "::1" : url.hostname, port))
    return undefined;

  const S3rver = loadS3rver(endpoint);
  // s3rver checks signatures against its own account registry; register our key pair there.
  const account = require("s3rver/lib/models/account.js") as {
    DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void };
  };
  account.DUMMY_ACCOUNT.createKeyPair(credentials.accessKeyId, credentials.secretAccessKey);
  const server = new S3rver({
    address: url.hostname === "localhost" ? "127.0.0.1" : url.hostname.replace(/^\[|\]$/g, ""),
    port,
    directory,
    silent: true,
    vhostBuckets: false,
  });
  await server.run();
  log.info({ endpoint, directory }, "local S3-compatible server started");
  return { close: () => server.close() };
}
