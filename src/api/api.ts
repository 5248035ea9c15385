// The api program: from a runtime, the upload service, the publisher and the Koa app, served.
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { constants } from "node:fs";
import { access, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import type Koa from "koa";
import type { Config } from "../core/config.ts";
import { type Faults, NO_FAULTS } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import { type ApiMetrics, createMetrics } from "../core/metrics.ts";
import type { Program, ProgramRuntime, RunningProgram } from "../core/program/program.ts";
import type { Runtime } from "../core/program/runtime.ts";
import { watchRedis } from "../core/status/watched-redis.ts";
import { runPurge } from "../core/uploads/purge.ts";
import { createApp } from "./http/app.ts";
import { createAuthenticator } from "./http/auth.ts";
import { createLingering, type Lingering } from "./http/lingering-close.ts";
import { tenantShare } from "./http/places.ts";
import { targetsRouter } from "./http/targets.routes.ts";
import { createTenantHolds } from "./http/tenant-holds.ts";
import { createUploadSlots } from "./http/upload-slots.ts";
import { uploadsRouter } from "./http/uploads.routes.ts";
import { WEB_ROOT, webRouter } from "./http/web.routes.ts";
import {
  createParsingThreadClient,
  type ParsingThreadClient,
} from "./intake/parsing-thread-client.ts";
import { prepareUploadDir, storedPath } from "./intake/upload-intake.ts";
import { createUploadsService } from "./intake/uploads-service.ts";
import { createProgressHub, type ProgressHub } from "./progress/progress-hub.ts";
import { type BatchPublisher, createBatchPublisher } from "./publishing/batch-publisher.ts";
import { redriveUploads } from "./publishing/redrive.ts";

export type Api = Readonly<{
  app: Koa;
  publisher: BatchPublisher;
  /** The parsing thread; close it once no upload is being received. */
  parser: ParsingThreadClient;
  /** Closing it ends every progress stream, which an HTTP server waits for when it closes. */
  progress: ProgressHub;
  /** Its end closes the connections answered and still discarding a body, which it waits for too. */
  lingering: Lingering;
  /**
   * The first step of stopping: readiness turns false, new uploads get 503 ShuttingDown,
   * and bodies still arriving are ended, each upload rejected with that reason.
   */
  refuse(): void;
}>;

/** An api that cannot store a body takes none: it is not ready. */
const uploadDirWritable = (uploadDir: string) =>
  access(uploadDir, constants.W_OK).then(
    () => true,
    () => false,
  );

export type Publishing = Readonly<{ progress: ProgressHub; publisher: BatchPublisher }>;

/**
 * What publishes stored batches: the publisher, and the progress hub on which it hears the
 * workers land them. The api's, and `npm run redrive`'s for the batches a re-drive reopens.
 */
export function createPublishing(
  config: Config,
  runtime: Runtime,
  metrics: ApiMetrics,
  log: Logger,
  faults: Faults = NO_FAULTS,
): Publishing {
  const { db, status, broker, redis } = runtime;
  // A connection in subscriber mode can run no other command, hence one of its own.
  // Subscriptions may wait for the connection, which ioredis makes once it is up; after a
  // reconnect the hub's listeners subscribe again themselves (progress-hub.ts).
  const { commandMs } = config.timeouts;
  const progress = createProgressHub(
    watchRedis(
      redis.duplicate({ enableOfflineQueue: true, autoResubscribe: false }),
      config.redisUrl,
      commandMs,
    ),
    status.channel,
    log,
    { pingMs: commandMs, subscribeMs: commandMs },
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
    // Stable for the life of the process only: a restarted api takes its uploads back as any
    // other replica would, once their leases lapse.
    replica: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
  });
  return { progress, publisher };
}

function createApi(
  config: Config,
  runtime: Runtime,
  metrics: ApiMetrics,
  log: Logger,
  faults: Faults,
  webRoot: string,
): Api {
  const { db, status, broker, redis, s3 } = runtime;
  const { progress, publisher } = createPublishing(config, runtime, metrics, log, faults);
  const parser = createParsingThreadClient(faults);
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
  let stopping = false;
  // No longer than a body may stay idle: a client answered cannot hold its connection longer.
  const lingering = createLingering({ maxMs: config.limits.uploadIdleTimeoutMs });
  const tenants = new Set(config.apiKeys?.values()).size;
  const authenticate = createAuthenticator(config.apiKeys);
  const uploadsRoutes = uploadsRouter({
    db,
    status,
    uploads,
    publisher,
    authenticate,
    progress,
    metrics,
    uploadSlots: createUploadSlots({
      max: config.limits.maxConcurrentUploads,
      // Counted from the first byte, before the upload is recorded against the tenant's limit.
      perTenant: tenantShare(
        config.limits.maxConcurrentUploads,
        tenants,
        config.limits.maxActiveUploadsPerTenant,
      ),
      holds: createTenantHolds(redis, config.namespace, config.limits.maxActiveUploadsPerTenant),
      activeLimit: config.limits.maxActiveUploadsPerTenant,
      idleTimeoutMs: config.limits.uploadIdleTimeoutMs,
      onChange: (receiving) => metrics.uploadsReceiving.set(receiving),
    }),
    bodyLimits: {
      maxBytes: config.limits.maxUploadBytes,
      formTimeoutMs: config.limits.uploadFormTimeoutMs,
    },
    progressLimits: {
      max: config.limits.maxProgressStreams,
      perTenant: tenantShare(config.limits.maxProgressStreams, tenants),
    },
    redrive: (uploadId) =>
      redriveUploads({ db, broker, status, namespace: config.namespace, publisher }, uploadId),
    purge: async (uploadId) => {
      await runPurge({ db, s3, bucket: config.s3.bucket }, uploadId);
      // A failed upload's batches never published wait here; the controller cannot reach them.
      await rm(storedPath(config.uploadDir, uploadId), { force: true });
    },
    stopping: () => stopping,
  });
  const app = createApp({
    metrics,
    log,
    stopping: () => stopping,
    unanswered: async () => {
      const [unavailable, writable] = await Promise.all([
        runtime.unanswered(),
        uploadDirWritable(config.uploadDir),
      ]);
      return writable ? unavailable : [...unavailable, "UPLOAD_DIR"];
    },
    lingering,
    routers: [uploadsRoutes, targetsRouter({ db, authenticate }), webRouter(webRoot)],
  });
  return {
    app,
    lingering,
    publisher,
    parser,
    progress,
    refuse() {
      stopping = true;
      uploads.stopReceiving();
    },
  };
}

/**
 * How long a stopping api goes on publishing the uploads it accepted: most of its shutdown
 * deadline, the rest left for closing its connections. An upload not published whole by then
 * is left to another replica sharing UPLOAD_DIR, or failed as its batches are lost.
 */
export const publishingGraceMs = (shutdownTimeoutMs: number) =>
  Math.floor((shutdownTimeoutMs * 3) / 4);

/**
 * Node answers 408 to a request whose body takes longer than `requestTimeout` (five minutes
 * by default), however steadily it arrives: a 5 GiB file would need 17 MB/s. Upload bodies
 * are bounded by their idleness and size instead (UPLOAD_IDLE_TIMEOUT_MS, MAX_UPLOAD_BYTES,
 * UPLOAD_FORM_TIMEOUT_MS); the only other body, a target's definition, is small and bounded
 * the same way (targets.routes.ts). The headers keep their bound.
 */
export const HEADERS_TIMEOUT_MS = 60_000;

async function listenApi(api: Api, port: number, host: string | undefined): Promise<Server> {
  const server = createServer(
    { requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS },
    api.app.callback(),
  );
  // A client may close its sending side once its request is out (HTTP/1.1 allows it; some
  // clients and proxies do). By default Node then ends the connection at once, and the
  // upload, accepted or not, goes unanswered. Node's http server has long read this
  // property, though its documentation does not list it: with it the answer is still
  // sent, and the connection ends after it.
  Object.assign(server, { httpAllowHalfOpen: true });
  server.listen(port, host);
  await once(server, "listening");
  return server;
}

export type RunningApi = RunningProgram & Readonly<{ server: Server; api: Api }>;

export type ApiOptions = Readonly<{
  /** Where the built web page is: dist/web unless a test built its own. */
  webRoot?: string;
  /** How long a stop goes on publishing; publishingGraceMs() of the shutdown deadline unless given. */
  publishingGraceMs?: number;
}>;

export async function start(
  runtime: ProgramRuntime,
  options: ApiOptions = {},
): Promise<RunningApi> {
  const { config, log, shutdown } = runtime;
  await prepareUploadDir(config.uploadDir);
  const api = createApi(
    config,
    runtime,
    createMetrics("api"),
    log,
    runtime.faults,
    options.webRoot ?? WEB_ROOT,
  );
  const server = await listenApi(api, config.ports.api, runtime.host);
  shutdown.add("stop", "uploads", api.refuse);
  shutdown.add("stop", "progress streams", api.progress.close);
  // The server keeps answering while publishing finishes: readiness false, uploads 503.
  const graceMs = options.publishingGraceMs ?? publishingGraceMs(config.shutdownTimeoutMs);
  shutdown.add("drain", "publisher", () => api.publisher.finish(graceMs));
  shutdown.add("drain", "http server", () => {
    api.lingering.end();
    return new Promise((resolve) => server.close(resolve));
  });
  shutdown.add("close", "parsing thread", api.parser.close);
  const { port } = server.address() as AddressInfo;
  log.info({ port, auth: config.apiKeys ? "on" : "off" }, "api listening");
  if (!config.apiKeys) log.warn("authentication is off: every request acts as the default tenant");
  const resumed = await api.publisher.resumeUnfinished();
  if (resumed > 0) log.info({ uploads: resumed }, "resumed publishing");
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    api,
    stop: () => shutdown.run("stopped"),
  };
}

export const apiProgram: Program = { name: "api", needs: {}, start: (runtime) => start(runtime) };
