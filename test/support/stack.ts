// Starts Sluice's programs against the machine's real PostgreSQL, Redis and RabbitMQ and a
// real S3-compatible server, each test with its own database, queues, keys and bucket.

import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { GetObjectCommand, ListObjectsCommand, type S3Client } from "@aws-sdk/client-s3";
import type { KubeConfig } from "@kubernetes/client-node";
import pg from "pg";
import { type Api, start as startApi } from "../../src/api/api.ts";
import { controllerProgram, start as startController } from "../../src/controller/controller.ts";
import { type Config, loadConfig } from "../../src/core/config.ts";
import { type Faults, NO_FAULTS } from "../../src/core/faults.ts";
import { createLogger } from "../../src/core/logger.ts";
import { NODE_OPTIONS } from "../../src/core/node-options.ts";
import {
  openProgramRuntime,
  type ProgramRuntime,
  type RunningProgram,
} from "../../src/core/program.ts";
import type { RuntimeNeeds } from "../../src/core/runtime.ts";
import { createShutdown } from "../../src/core/shutdown.ts";
import { startLocalS3 } from "../../src/core/storage/local-s3.ts";
import { createS3, ensureBucket } from "../../src/core/storage/s3.ts";
import { start as startWorker, workerProgram } from "../../src/worker/worker.ts";

const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
export const ROOT = new URL("../../", import.meta.url).pathname;

let s3Server: Promise<{ endpoint: string; close(): Promise<void> }> | undefined;

/** One s3rver per test process, on a free port. */
function sharedS3(): Promise<{ endpoint: string; close(): Promise<void> }> {
  s3Server ??= (async () => {
    const { createServer } = await import("node:net");
    const probe = createServer().listen(0, "127.0.0.1");
    await once(probe, "listening");
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const endpoint = `http://127.0.0.1:${port}`;
    const dir = await mkdtemp(join(tmpdir(), "sluice-s3-"));
    const server = await startLocalS3(
      endpoint,
      { accessKeyId: "test", secretAccessKey: "test" },
      dir,
      createLogger("test-s3", "silent"),
    );
    return { endpoint, close: async () => server?.close() };
  })();
  return s3Server;
}

// Registered at import, so on the root: the shared server would otherwise keep a test
// file's process alive after its last test.
after(async () => {
  if (s3Server) await (await s3Server).close();
});

export type TestEnv = Readonly<{
  env: Record<string, string>;
  config: Config;
  s3: S3Client;
  /** Rows, batches and status straight from PostgreSQL. */
  sql: pg.Pool;
  cleanup(): Promise<void>;
}>;

/** A fresh database, namespace, bucket and upload folder. */
export async function testEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
  const database = `sluice_test_${suffix}`;
  const s3 = await sharedS3();
  const uploadDir = await mkdtemp(join(tmpdir(), "sluice-uploads-"));
  const env = {
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
    SLUICE_NAMESPACE: `test-${suffix}`,
    S3_BUCKET: `test-${suffix}`,
    AWS_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    UPLOAD_DIR: uploadDir,
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
  return {
    env,
    config,
    s3: createS3(config.s3, config.timeouts),
    sql: pool,
    async cleanup() {
      await pool.end();
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      // A pool's end() resolves before the server has closed its connections; forcing the
      // drop under them would reach their clients as an uncaught error.
      for (let wait = 0; wait < 50; wait++) {
        const { rows } = await admin.query(
          "select count(*)::int as n from pg_stat_activity where datname = $1",
          [database],
        );
        if (rows[0].n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await admin.query(`drop database if exists ${database} with (force)`);
      await admin.end();
      await deleteQueues(config.namespace, config.worker.maxAttempts);
      await rm(uploadDir, { recursive: true, force: true });
    },
  };
}

async function deleteQueues(namespace: string, maxAttempts: number): Promise<void> {
  const amqp = await import("amqplib");
  const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
  const channel = await connection.createChannel();
  const { queueNames } = await import("../../src/core/broker/queue-names.ts");
  const names = queueNames(namespace);
  const retries = Array.from({ length: maxAttempts - 1 }, (_, i) => names.retry(i + 1));
  for (const queue of [names.batches, names.dead, ...retries]) {
    await channel.deleteQueue(queue);
  }
  await connection.close();
}

export type InProcess = Readonly<{
  url: string;
  /** The api's HTTP server. */
  server: Server;
  /** The in-process worker's ops server (/metrics, /healthz), when there is a worker. */
  workerUrl: string | undefined;
  runtime: ProgramRuntime;
  api: Api;
  stop(): Promise<void>;
}>;

/** Longer than any test: a test's stop ends what it started before the test cleans up. */
const TEST_SHUTDOWN_MS = 600_000;

/** A runtime for programs in this test's process: their servers on 127.0.0.1 only. */
async function openTestRuntime(
  test: TestEnv,
  name: string,
  options: { needs?: RuntimeNeeds; faults?: Faults; config?: Config } = {},
): Promise<ProgramRuntime> {
  const { needs = {}, faults = NO_FAULTS, config = test.config } = options;
  const log = createLogger(name, "silent");
  return openProgramRuntime([{ needs }], {
    config,
    log,
    faults,
    shutdown: createShutdown(log, TEST_SHUTDOWN_MS),
    env: {},
    host: "127.0.0.1",
  });
}

/**
 * The api (and, unless told otherwise, a worker) in this test's process, started as the
 * programs start. Its stop publishes nothing more: a test's uploads wait for no worker.
 */
export async function startInProcess(
  test: TestEnv,
  options: { worker?: boolean; webRoot?: string; faults?: Faults } = {},
): Promise<InProcess> {
  const worker = options.worker !== false;
  const runtime = await openTestRuntime(test, "test", {
    needs: worker ? workerProgram.needs : {},
    faults: options.faults,
  });
  try {
    const api = await startApi(runtime, { webRoot: options.webRoot, publishingGraceMs: 0 });
    const running = worker ? await startWorker(runtime) : undefined;
    return {
      url: api.url,
      server: api.server,
      workerUrl: running?.url,
      runtime,
      api: api.api,
      stop: () => runtime.shutdown.run("test done"),
    };
  } catch (err) {
    await runtime.shutdown.run("start failed");
    throw err;
  }
}

/**
 * A worker in this test's process: on the runtime of `beside` (stopped with it, or before
 * by its own stop), else on a runtime of its own, from `config` when given.
 */
export async function startWorkerInProcess(
  test: TestEnv,
  on: { beside?: InProcess; config?: Config } = {},
): Promise<RunningProgram> {
  if (on.beside) {
    const { runtime } = on.beside;
    // What a worker's runtime does at start; that of an api alone does not.
    await ensureBucket(runtime.s3, runtime.config.s3.bucket);
    return startWorker({ ...runtime, shutdown: runtime.shutdown.part() });
  }
  const runtime = await openTestRuntime(test, "test-worker", {
    needs: workerProgram.needs,
    config: on.config,
  });
  try {
    const worker = await startWorker(runtime);
    return { url: worker.url, stop: () => runtime.shutdown.run("test done") };
  } catch (err) {
    await runtime.shutdown.run("start failed");
    throw err;
  }
}

export type InProcessController = Readonly<{ url: string; stop(): Promise<void> }>;

/**
 * The controller in this test's process, with connections of its own as in production;
 * with a KubeConfig it reports to that cluster, without one through status, logs and metrics.
 */
export async function startControllerInProcess(
  test: TestEnv,
  kubeConfig: KubeConfig | undefined,
): Promise<InProcessController> {
  const runtime = await openTestRuntime(test, "test-controller", {
    needs: controllerProgram.needs,
  });
  try {
    const controller = await startController(runtime, { kubeConfig });
    return { url: controller.url, stop: () => runtime.shutdown.run("test done") };
  } catch (err) {
    await runtime.shutdown.run("start failed");
    throw err;
  }
}

// Whatever ends a test process (a failure, --test-force-exit, Ctrl-C) ends the programs it
// started too, so none is left running against a dropped database.
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** A program as its own process, as it runs in production, so a test can kill it. */
export function spawnProgram(
  program: "api" | "worker" | "controller",
  env: Record<string, string>,
): ChildProcess {
  return track(
    spawn(
      process.execPath,
      [...NODE_OPTIONS[program].split(" "), join(ROOT, "src", program, "main.ts")],
      {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    ),
  );
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The value of one sample of a program's /metrics, e.g. `sluice_uploads_stuck`, if it has one. */
export async function metricSample(
  url: string,
  name: string,
  labels = "",
): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}{`) && labels.split(",").every((label) => l.includes(label)));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

export async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: any }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** One call to the api, with a CSV body when given: status, headers, text and parsed JSON. */
export async function callApi(base: string, method: string, path: string, body?: string) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "text/csv" },
    body,
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: json };
}

export async function listBatchObjects(test: TestEnv, uploadId: string): Promise<string[]> {
  const keys: string[] = [];
  // Version 1 listings: s3rver's version 2 page tokens need a cipher Node 24 no longer has.
  let marker: string | undefined;
  do {
    const page = await test.s3.send(
      new ListObjectsCommand({
        Bucket: test.config.s3.bucket,
        Prefix: `uploads/${uploadId}/`,
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
