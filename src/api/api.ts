// Assembles the api from a runtime: the upload service, the publisher and the Koa app.
import type Koa from "koa";
import { sql } from "kysely";
import type { Registry } from "prom-client";
import type { Config } from "../core/config.ts";
import type { Logger } from "../core/logger.ts";
import type { Runtime } from "../core/runtime.ts";
import { createApp } from "./app.ts";
import { createAuthenticator } from "./auth.ts";
import { type BatchPublisher, createBatchPublisher } from "./batch-publisher.ts";
import { limitConcurrentUploads } from "./upload-slots.ts";
import { createUploadsService } from "./uploads.service.ts";

export type Api = Readonly<{ app: Koa; publisher: BatchPublisher }>;

export function createApi(config: Config, runtime: Runtime, registry: Registry, log: Logger): Api {
  const { db, status, broker, redis } = runtime;
  const publisher = createBatchPublisher({
    broker,
    db,
    status,
    namespace: config.namespace,
    uploadDir: config.uploadDir,
    batchSize: config.limits.batchSize,
    csv: { maxColumns: config.limits.maxColumns, maxFieldBytes: config.limits.maxFieldBytes },
    log,
  });
  const uploads = createUploadsService({
    db,
    status,
    publisher,
    uploadDir: config.uploadDir,
    limits: config.limits,
    log,
  });
  const app = createApp({
    db,
    status,
    uploads,
    publisher,
    authenticate: createAuthenticator(config.apiKeys),
    uploadSlots: limitConcurrentUploads(
      config.limits.maxConcurrentUploads,
      config.limits.uploadIdleTimeoutMs,
    ),
    registry,
    log,
    ready: async () => {
      await sql`select 1`.execute(db);
      await redis.ping();
      return broker.isConnected();
    },
  });
  return { app, publisher };
}
