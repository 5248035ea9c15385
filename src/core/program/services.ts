// Opens the services every program depends on, and says plainly which one is missing or
// silent.
import { readFile } from "node:fs/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import type pg from "pg";
import { type Broker, connectBroker } from "../broker/broker.ts";
import type { Config } from "../config.ts";
import { createDatabase, type Db, type Postgres } from "../db/database.ts";
import { migrateToLatest, pendingMigrations } from "../db/migrations.ts";
import { applyTargets } from "../db/targets.repository.ts";
import { type Patience, watchedClient } from "../db/watched-client.ts";
import {
  type Dependency,
  DependencyTimeoutError,
  redactUrl,
  withinDeadline,
} from "../dependencies.ts";
import type { Logger } from "../logger.ts";
import { watchRedis } from "../status/watched-redis.ts";
import { bucketExists, createS3, ensureBucket, s3Endpoint } from "../storage/s3.ts";
import { parseTargetsFile } from "../targets/targets-file.ts";

export class DependencyError extends Error {
  override name = "DependencyError";
}

const HOW_TO_START = {
  PostgreSQL:
    "start it with `pg_ctlcluster <version> main start` (or `systemctl start postgresql`)",
  Redis: "start it with `redis-server --daemonize yes` (or `systemctl start redis-server`)",
  RabbitMQ: "start it with `rabbitmq-server -detached` (or `systemctl start rabbitmq-server`)",
};

function unreachable(
  service: keyof typeof HOW_TO_START,
  url: string,
  err: unknown,
): DependencyError {
  if (err instanceof DependencyTimeoutError) return silent(service, err);
  const reason = err instanceof Error ? err.message || err.name : String(err);
  return new DependencyError(
    `${service} is not reachable at ${redactUrl(url)} (${reason}); ${HOW_TO_START[service]}`,
    { cause: err },
  );
}

/** A service that took the connection and then said nothing in time. */
function silent(service: Dependency, err: DependencyTimeoutError): DependencyError {
  return new DependencyError(
    `${err.message}; check that ${service} is what listens there and that it is not overloaded (CONNECT_TIMEOUT_MS sets how long Sluice waits)`,
    { cause: err },
  );
}

/** Any fixed number; the same in every program. */
const MIGRATION_LOCK = 7_258_911;

/** A single connection: the server must answer at once, but a query may take its time. */
function standaloneClient(url: string, config: Config): pg.Client {
  const patience: Patience = { connectMs: config.timeouts.connectMs, answerMs: undefined };
  const client = new (watchedClient(url, patience))({ connectionString: url });
  // A connection that dies under a query fails that query; the event must not end the process.
  client.on("error", () => undefined);
  return client;
}

async function createDatabaseIfMissing(url: string, config: Config): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = standaloneClient(admin.toString(), config);
  await client.connect();
  try {
    await client.query(`create database "${name.replaceAll('"', '""')}"`);
  } catch (err) {
    // Another program of ours may have created it a moment ago.
    const code = (err as { code?: string }).code;
    if (code !== "42P04" && code !== "23505") throw err;
  } finally {
    await client.end();
  }
}

/**
 * Connects to PostgreSQL and brings the schema up to date. Outside production a missing
 * database is created, so a laptop needs no set-up.
 */
export async function openDatabase(
  config: Config,
  log: Logger,
  poolSize?: number,
): Promise<Postgres> {
  const probe = async () => {
    const client = standaloneClient(config.databaseUrl, config);
    await client.connect();
    await client.end();
  };
  try {
    await probe();
  } catch (err) {
    if ((err as { code?: string }).code === "3D000" && config.env !== "production") {
      try {
        await createDatabaseIfMissing(config.databaseUrl, config);
      } catch (createErr) {
        throw unreachable("PostgreSQL", config.databaseUrl, createErr);
      }
    } else {
      throw unreachable("PostgreSQL", config.databaseUrl, err);
    }
  }
  const onConnectionError = (err: Error) =>
    log.warn({ err: err.message }, "PostgreSQL connection lost");
  if (!config.migrateAtStart) {
    const pool = createDatabase(
      config.databaseUrl,
      { connectMs: config.timeouts.connectMs, answerMs: config.timeouts.commandMs },
      onConnectionError,
      poolSize,
    );
    const pending = await pendingMigrations(pool.db).catch(async (err) => {
      await pool.db.destroy();
      throw unreachable("PostgreSQL", config.databaseUrl, err);
    });
    if (pending.length > 0) {
      await pool.db.destroy();
      throw new Error(
        `PostgreSQL's schema is behind: ${pending.length} migration(s) pending (${pending.join(", ")}). With MIGRATE_AT_START=false they run apart: \`npm run migrate\` (node dist/core/db/migrate.main.js), or the chart's migration Job`,
      );
    }
    return pool;
  }
  // Programs starting together on a new database would race to create the migration
  // tables; a session lock lets one migrate while the others wait. A migration may rewrite
  // a large table, so its connection waits for answers as long as they take.
  const lock = standaloneClient(config.databaseUrl, config);
  await lock.connect();
  const migrating = createDatabase(
    config.databaseUrl,
    { connectMs: config.timeouts.connectMs, answerMs: undefined },
    onConnectionError,
    1,
  );
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await migrateToLatest(migrating.db);
    if (config.targetsFile) await applyTargetsFile(migrating.db, config.targetsFile, log);
  } finally {
    await migrating.db.destroy();
    await lock.end();
  }
  return createDatabase(
    config.databaseUrl,
    { connectMs: config.timeouts.connectMs, answerMs: config.timeouts.commandMs },
    onConnectionError,
    poolSize,
  );
}

/**
 * Applies the targets of TARGETS_FILE, with the migrations and by the same user; a file that
 * cannot be read or applied stops the program, naming every problem.
 */
async function applyTargetsFile(db: Db, path: string, log: Logger): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`TARGETS_FILE ${path} cannot be read: ${(err as Error).message}`);
  }
  const parsed = parseTargetsFile(text);
  if ("problems" in parsed) {
    throw new Error(`TARGETS_FILE ${path} is not valid: ${parsed.problems.join("; ")}`);
  }
  const applied = await applyTargets(db, parsed.targets);
  if (applied.problems.length > 0) {
    throw new Error(`TARGETS_FILE ${path}: ${applied.problems.join("; ")}`);
  }
  log.info({ saved: applied.saved, unchanged: applied.unchanged }, "targets file applied");
}

export async function openRedis(config: Config, log: Logger): Promise<Redis> {
  const { connectMs, commandMs } = config.timeouts;
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectTimeout: connectMs,
    // A command that was sent when the connection dropped fails then, rather than being sent
    // again after the reconnection; its caller retries (a 503 with Retry-After, a batch retry).
    maxRetriesPerRequest: 0,
    // While Redis is unreachable a command fails at once, instead of waiting out reconnection
    // attempts (tens of seconds) to be replayed later: the api answers 503 promptly, and no
    // stale view is written over a newer one once Redis is back.
    enableOfflineQueue: false,
  });
  // A connection that owes replies and receives nothing for commandMs is dropped, failing its
  // commands, and replaced: a Redis that keeps the connection open and stops answering would
  // otherwise hold them for ever.
  watchRedis(redis, config.redisUrl, commandMs);
  // The first connection must succeed; after that ioredis reconnects by itself. The
  // listener goes on first, so a refused connection is reported here rather than printed
  // by ioredis as an unhandled error.
  let lastError: Error | undefined;
  redis.on("error", (err: Error) => {
    lastError = err;
    if (redis.status === "ready" || redis.status === "reconnecting") {
      log.warn({ err: err.message }, "Redis error");
    }
  });
  try {
    await withinDeadline(redis.connect(), connectMs, () =>
      DependencyTimeoutError.silent("Redis", config.redisUrl, connectMs),
    );
  } catch (err) {
    redis.disconnect();
    throw unreachable(
      "Redis",
      config.redisUrl,
      err instanceof DependencyTimeoutError ? err : (lastError ?? err),
    );
  }
  return redis;
}

export async function openBroker(config: Config, log: Logger): Promise<Broker> {
  try {
    return await connectBroker(
      config.rabbitmqUrl,
      {
        namespace: config.namespace,
        maxAttempts: config.worker.maxAttempts,
        retryBaseMs: config.worker.retryBaseMs,
      },
      config.timeouts,
      log,
    );
  } catch (err) {
    throw unreachable("RabbitMQ", config.rabbitmqUrl, err);
  }
}

/**
 * The S3 client, once the bucket answers: with CREATE_BUCKET (the default outside
 * production) a missing bucket is made; otherwise it must exist.
 */
export async function openStorage(config: Config): Promise<S3Client> {
  const s3 = createS3(config.s3, config.timeouts);
  const endpoint = s3Endpoint(config.s3);
  const { connectMs } = config.timeouts;
  const abort = new AbortController();
  const check = async () => {
    if (config.s3.createBucket) return ensureBucket(s3, config.s3.bucket, abort.signal);
    if (!(await bucketExists(s3, config.s3.bucket, abort.signal))) {
      throw new Error(
        `bucket ${config.s3.bucket} does not exist; create it, or set CREATE_BUCKET=true`,
      );
    }
  };
  try {
    await withinDeadline(check(), connectMs, () => {
      abort.abort();
      return DependencyTimeoutError.silent("S3", endpoint, connectMs);
    });
  } catch (err) {
    s3.destroy();
    if (err instanceof DependencyTimeoutError) throw silent("S3", err);
    throw new DependencyError(
      `S3 bucket ${config.s3.bucket} is not usable at ${redactUrl(endpoint)} (${(err as Error).message || (err as Error).name}); check AWS_ENDPOINT, the credentials and the bucket`,
      { cause: err },
    );
  }
  return s3;
}
