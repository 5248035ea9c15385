// Opens the services every program depends on, and says plainly which one is missing.
import { Redis } from "ioredis";
import pg from "pg";
import { type Broker, connectBroker } from "./broker/broker.ts";
import type { Config } from "./config.ts";
import { createDatabase, type Postgres } from "./db/database.ts";
import { migrateToLatest } from "./db/migrations.ts";
import type { Logger } from "./logger.ts";

export class DependencyError extends Error {
  override name = "DependencyError";
}

/** Connection URLs without their passwords, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
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
  const reason = err instanceof Error ? err.message || err.name : String(err);
  return new DependencyError(
    `${service} is not reachable at ${redactUrl(url)} (${reason}); ${HOW_TO_START[service]}`,
    { cause: err },
  );
}

/** Any fixed number; the same in every program. */
const MIGRATION_LOCK = 7_258_911;

async function createDatabaseIfMissing(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
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
    const client = new pg.Client({ connectionString: config.databaseUrl });
    await client.connect();
    await client.end();
  };
  try {
    await probe();
  } catch (err) {
    if ((err as { code?: string }).code === "3D000" && config.env !== "production") {
      try {
        await createDatabaseIfMissing(config.databaseUrl);
      } catch (createErr) {
        throw unreachable("PostgreSQL", config.databaseUrl, createErr);
      }
    } else {
      throw unreachable("PostgreSQL", config.databaseUrl, err);
    }
  }
  const postgres = createDatabase(
    config.databaseUrl,
    (err) => log.warn({ err: err.message }, "PostgreSQL connection lost"),
    poolSize,
  );
  // Programs starting together on a new database would race to create the migration
  // tables; a session lock lets one migrate while the others wait.
  const lock = new pg.Client({ connectionString: config.databaseUrl });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await migrateToLatest(postgres.db);
  } finally {
    await lock.end();
  }
  return postgres;
}

export async function openRedis(config: Config, log: Logger): Promise<Redis> {
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    // While Redis is unreachable a command fails at once, instead of waiting out reconnection
    // attempts (tens of seconds) to be replayed later: the api answers 503 promptly, and no
    // stale view is written over a newer one once Redis is back.
    enableOfflineQueue: false,
  });
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
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw unreachable("Redis", config.redisUrl, lastError ?? err);
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
      log,
    );
  } catch (err) {
    throw unreachable("RabbitMQ", config.rabbitmqUrl, err);
  }
}
