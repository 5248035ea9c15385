// A world of its own on the machine's real PostgreSQL, Redis and RabbitMQ and an S3-compatible
// server: a fresh database, namespace (queues and keys), bucket and upload folder, and the
// clean-up that removes them. Nothing here imports node:test: the benchmark uses it too.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GetObjectCommand, ListObjectsCommand, type S3Client } from "@aws-sdk/client-s3";
import amqp from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { type Config, loadConfig } from "../../src/core/config.ts";
import { createS3 } from "../../src/core/storage/s3.ts";
import { uploadPrefix } from "../../src/core/storage/s3-keys.ts";

export const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";

export type TestEnv = Readonly<{
  /** The name of its database. */
  database: string;
  env: Record<string, string>;
  config: Config;
  s3: S3Client;
  /** Rows, batches and status straight from PostgreSQL. */
  sql: pg.Pool;
  cleanup(): Promise<void>;
}>;

/** Clean-up outlives a restart of PostgreSQL or RabbitMQ: it tries again for a minute. */
async function persistently(run: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await run();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

/** One statement on the server's own database, e.g. create or drop another. */
export async function adminQuery<T = Record<string, unknown>>(
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    return (await admin.query(text, values)).rows as T[];
  } finally {
    await admin.end();
  }
}

export const dropDatabase = (name: string) =>
  persistently(() => adminQuery(`drop database if exists ${name} with (force)`));

/**
 * A fresh database (made by the first program to start), namespace, bucket and upload folder,
 * named `<prefix>-<random>`, on the S3-compatible server at `endpoint`. `overrides` win over
 * the defaults; an UPLOAD_DIR given there is the caller's to remove.
 */
export async function freshEnv(
  endpoint: string,
  overrides: Record<string, string> = {},
  prefix = "test",
): Promise<TestEnv> {
  const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
  const database = `sluice_${prefix}_${suffix}`;
  const ownUploadDir =
    overrides.UPLOAD_DIR === undefined ? await mkdtemp(join(tmpdir(), "sluice-uploads-")) : "";
  const env = {
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
    SLUICE_NAMESPACE: `${prefix}-${suffix}`,
    S3_BUCKET: `${prefix}-${suffix}`,
    AWS_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    UPLOAD_DIR: ownUploadDir,
    PORT: "0",
    WORKER_PORT: "0",
    CONTROLLER_PORT: "0",
    RETRY_BASE_MS: "200",
    ...overrides,
  };
  const config = loadConfig(env);
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
  // Idle connections die when a fault case restarts PostgreSQL; the pool replaces them.
  pool.on("error", () => undefined);
  const s3 = createS3(config.s3, config.timeouts);
  return {
    database,
    env,
    config,
    s3,
    sql: pool,
    async cleanup() {
      await pool.end();
      s3.destroy();
      // A pool's end() resolves before the server has closed its connections; forcing the
      // drop under them would reach their clients as an uncaught error.
      for (let wait = 0; wait < 50; wait++) {
        const [{ n }] = (await adminQuery<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = $1",
          [database],
        )) as [{ n: number }];
        if (n === 0) break;
        await sleep(100);
      }
      await dropDatabase(database);
      await persistently(() => deleteQueuesAndKeys(config));
      if (ownUploadDir) await rm(ownUploadDir, { recursive: true, force: true });
    },
  };
}

async function deleteQueuesAndKeys(config: Config): Promise<void> {
  const names = queueNames(config.namespace);
  const retries = Array.from({ length: config.worker.maxAttempts - 1 }, (_, i) =>
    names.retry(i + 1),
  );
  const connection = await amqp.connect(config.rabbitmqUrl);
  try {
    const channel = await connection.createChannel();
    for (const queue of [names.batches, names.dead, ...retries]) await channel.deleteQueue(queue);
  } finally {
    await connection.close();
  }
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(
        cursor,
        "MATCH",
        `${config.namespace}:*`,
        "COUNT",
        1000,
      );
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** The keys of an upload's batch objects in S3, sorted. */
export async function listBatchObjects(test: TestEnv, uploadId: string): Promise<string[]> {
  const keys: string[] = [];
  // Version 1 listings with the last key as marker: s3rver makes version 2 page tokens with
  // DES, which the OpenSSL of Node 24 no longer offers.
  let marker: string | undefined;
  do {
    const page = await test.s3.send(
      new ListObjectsCommand({
        Bucket: test.config.s3.bucket,
        Prefix: uploadPrefix(uploadId),
        Marker: marker,
      }),
    );
    const found = (page.Contents ?? []).map((o) => o.Key as string);
    keys.push(...found);
    marker = page.IsTruncated ? found.at(-1) : undefined;
  } while (marker);
  return keys.sort();
}

export async function getObjectJson(test: TestEnv, key: string): Promise<any> {
  const object = await test.s3.send(
    new GetObjectCommand({ Bucket: test.config.s3.bucket, Key: key }),
  );
  return JSON.parse(
    await (object.Body as { transformToString(): Promise<string> }).transformToString(),
  );
}
