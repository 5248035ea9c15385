// The connections a program holds, opened in one place and closed in reverse order.
import type { S3Client } from "@aws-sdk/client-s3";
import type { Redis } from "ioredis";
import { sql } from "kysely";
import type pg from "pg";
import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config.ts";
import type { Db } from "../db/database.ts";
import { type Check, type Dependency, unanswered } from "../dependencies.ts";
import type { Logger } from "../logger.ts";
import { createStatusStore, type StatusStore } from "../status/status-store.ts";
import { createS3 } from "../storage/s3.ts";
import { openBroker, openDatabase, openRedis, openStorage } from "./services.ts";

export type Runtime = Readonly<{
  db: Db;
  /** The pool under `db`, for COPY. */
  pool: pg.Pool;
  redis: Redis;
  broker: Broker;
  s3: S3Client;
  status: StatusStore;
  /**
   * The dependencies that do not answer right now, with those of `more` (a program's own,
   * such as the worker's S3); none when all is well.
   */
  unanswered(more?: readonly Check[]): Promise<Dependency[]>;
  close(): Promise<void>;
}>;

/** Under the chart's three-second readiness probe timeout, so that the probe reads the answer. */
const READINESS_MS = 2_000;

/** How long a readiness check waits for each dependency. */
export const readinessMs = (config: Config) => Math.min(config.timeouts.commandMs, READINESS_MS);

export type RuntimeNeeds = Readonly<{
  /**
   * S3 answers and its bucket exists before the runtime opens (outside production, the bucket
   * is made); else S3 is a client whose first request reaches it.
   */
  bucket?: boolean;
}>;

export async function openRuntime(
  config: Config,
  log: Logger,
  needs: RuntimeNeeds = {},
): Promise<Runtime> {
  const opened: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
  };
  try {
    const { db, pool } = await openDatabase(config, log);
    opened.push(() => db.destroy());
    const redis = await openRedis(config, log);
    opened.push(() => redis.quit());
    const broker = await openBroker(config, log);
    opened.push(() => broker.close());
    const s3 = needs.bucket ? await openStorage(config) : createS3(config.s3, config.timeouts);
    opened.push(async () => s3.destroy());
    return {
      db,
      pool,
      redis,
      broker,
      s3,
      status: createStatusStore(redis, db, config.namespace),
      unanswered: (more = []) =>
        unanswered(
          [
            { dependency: "PostgreSQL", answers: () => sql`select 1`.execute(db) },
            { dependency: "Redis", answers: () => redis.ping() },
            { dependency: "RabbitMQ", answers: () => broker.answers() },
            ...more,
          ],
          readinessMs(config),
        ),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
