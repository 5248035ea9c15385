// Assembles the api from a runtime: the upload service, the publisher and the Koa app.
import type Koa from "koa";
import type { Config } from "../core/config.ts";
import { type Faults, NO_FAULTS } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import type { ApiMetrics } from "../core/metrics.ts";
import type { Runtime } from "../core/runtime.ts";
import { createApp } from "./app.ts";
import { createAuthenticator } from "./auth.ts";
import { type BatchPublisher, createBatchPublisher } from "./batch-publisher.ts";
import { createIntakeParser, type IntakeParser } from "./intake-parser.ts";
import { createProgressHub, type ProgressHub } from "./progress-hub.ts";
import { limitConcurrentUploads } from "./upload-slots.ts";
import { createUploadsService } from "./uploads.service.ts";

export type Api = Readonly<{
  app: Koa;
  publisher: BatchPublisher;
  /** The parsing thread; close it once no upload is being received. */
  parser: IntakeParser;
  /** Closing it ends every progress stream, which an HTTP server waits for when it closes. */
  progress: ProgressHub;
}>;

export function createApi(
  config: Config,
  runtime: Runtime,
  metrics: ApiMetrics,
  log: Logger,
  faults: Faults = NO_FAULTS,
): Api {
  const { db, status, broker, redis } = runtime;
  // A connection in subscriber mode can run no other command, hence one of its own.
  // Subscriptions may wait for the connection: ioredis makes them once it is up, and again
  // after every reconnect.
  const progress = createProgressHub(
    redis.duplicate({ enableOfflineQueue: true }),
    status.channel,
    log,
  );
  const publisher = createBatchPublisher({
    broker,
    db,
    status,
    namespace: config.namespace,
    uploadDir: config.uploadDir,
    maxInFlight: config.limits.maxBatchesInFlightPerUpload,
    progress,
    metrics,
    faults,
    log,
  });
  const parser = createIntakeParser();
  const uploads = createUploadsService({
    db,
    status,
    publisher,
    parser,
    uploadDir: config.uploadDir,
    limits: config.limits,
    metrics,
    log,
  });
  const app = createApp({
    db,
    status,
    uploads,
    publisher,
    authenticate: createAuthenticator(config.apiKeys),
    progress,
    metrics,
    uploadSlots: limitConcurrentUploads(
      config.limits.maxConcurrentUploads,
      config.limits.uploadIdleTimeoutMs,
    ),
    log,
    unanswered: runtime.unanswered,
  });
  return { app, publisher, parser, progress };
}
