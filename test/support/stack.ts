// Starts Sluice's programs against the machine's real PostgreSQL, Redis and RabbitMQ and a
// real S3-compatible server, each test with its own database, queues, keys and bucket.

import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { type Api, start as startApi } from "../../src/api/api.ts";
import { controllerProgram, start as startController } from "../../src/controller/controller.ts";
import type { Config } from "../../src/core/config.ts";
import { type Faults, NO_FAULTS } from "../../src/core/faults.ts";
import { createLogger } from "../../src/core/logger.ts";
import {
  openProgramRuntime,
  type ProgramRuntime,
  type RunningProgram,
} from "../../src/core/program/program.ts";
import type { RuntimeNeeds } from "../../src/core/program/runtime.ts";
import { createShutdown } from "../../src/core/program/shutdown.ts";
import { startLocalS3 } from "../../src/core/storage/local-s3.ts";
import { ensureBucket } from "../../src/core/storage/s3.ts";
import { start as startWorker, workerProgram } from "../../src/worker/worker.ts";
import { metricSample } from "./http.ts";
import { freePort, waitFor } from "./program.ts";
import { freshEnv, type TestEnv } from "./test-env.ts";

export { acceptedUpload, callApi, getJson, metricSample, requestFailed } from "./http.ts";
export { freePort, ROOT, spawnProgram, waitFor } from "./program.ts";
export { getObjectJson, listBatchObjects, type TestEnv } from "./test-env.ts";

let s3Server: Promise<{ endpoint: string; close(): Promise<void> }> | undefined;

/** One s3rver per test process, on a free port. */
function sharedS3(): Promise<{ endpoint: string; close(): Promise<void> }> {
  s3Server ??= (async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const dir = await mkdtemp(join(tmpdir(), "sluice-s3-"));
    const server = await startLocalS3(
      endpoint,
      { accessKeyId: "test", secretAccessKey: "test" },
      dir,
      createLogger("test-s3", "silent"),
    );
    return {
      endpoint,
      close: async () => {
        await server?.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  })();
  return s3Server;
}

// Registered at import, so on the root: the shared server would otherwise keep a test
// file's process alive after its last test, and its folder would stay behind.
after(async () => {
  if (s3Server) await (await s3Server).close();
});

/** Waits for the program at `url` (`who`) to count `count` uploads ended `status`, no more. */
export const uploadsCounted = (who: string, url: string, status: string, count: number) =>
  waitFor(
    `${who} to count ${count} uploads ${status}`,
    async () => (await metricSample(url, "sluice_uploads_total", `status="${status}"`)) === count,
  );

/** A fresh database, namespace, bucket and upload folder, on this process's S3 server. */
export async function testEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  return freshEnv((await sharedS3()).endpoint, overrides);
}

type StopLater = <T extends { stop(): Promise<unknown> } | { cleanup(): Promise<unknown> }>(
  started: T,
) => T;

/**
 * Stops (or cleans up) what it is given after the file's (or suite's) tests, or after each
 * test with "each", the last given first; gives it back.
 */
export function stopsAfter(when: "all" | "each" = "all"): StopLater {
  const undo: Array<() => Promise<unknown>> = [];
  (when === "each" ? afterEach : after)(async () => {
    for (const step of undo.splice(0).reverse()) await step();
  });
  return (started) => {
    undo.push(() => ("stop" in started ? started.stop() : started.cleanup()));
    return started;
  };
}

/**
 * Starts a fresh env and its api (see startInProcess) at each call, and stops and cleans up
 * every one it started, the last first, after the file's (or suite's) tests, or after each
 * test with "each".
 */
export function stackStarter(when: "all" | "each" = "all") {
  const stopLater = stopsAfter(when);
  return async (
    overrides: Record<string, string> = {},
    options: Parameters<typeof startInProcess>[1] = {},
  ): Promise<{ env: TestEnv; api: InProcess }> => {
    const env = stopLater(await testEnv(overrides));
    const api = stopLater(await startInProcess(env, options));
    return { env, api };
  };
}

/** API_KEYS for these tenants' keys: `tenant:key,…`. */
export const apiKeys = (keys: Record<string, string>): string =>
  Object.entries(keys)
    .map(([tenant, key]) => `${tenant}:${key}`)
    .join(",");

/** An env and an api on it; what is given to its stopLater stops before them. */
export type ApiForTests<A extends InProcess> = Readonly<{
  env: TestEnv;
  api: A;
  stopLater: StopLater;
}>;
export type Stack = ApiForTests<InProcess>;

/**
 * A fresh env and an api on it (started by `startApi`), before the tests of the file, or of
 * the describe it is called in, and stopped and cleaned up after them; `prepare` runs on
 * them once they are up. Its env and api are there in tests and in `prepare`, not when the
 * file loads (nor in other before hooks at a file's top level: node:test runs those
 * alongside this one).
 */
export function apiForTests<A extends InProcess>(
  overrides: Record<string, string>,
  startApi: (env: TestEnv) => Promise<A>,
  prepare: (stack: ApiForTests<A>) => Promise<unknown> = async () => undefined,
): ApiForTests<A> {
  let env: TestEnv | undefined;
  let api: A | undefined;
  const started = () => {
    if (!env || !api) throw new Error("the api is started in a before hook: read it in tests");
    return { env, api, stopLater };
  };
  const stopLater = stopsAfter();
  before(async () => {
    env = stopLater(await testEnv(overrides));
    api = stopLater(await startApi(env));
    await prepare(started());
  });
  return {
    get env() {
      return started().env;
    },
    get api() {
      return started().api;
    },
    stopLater,
  };
}

/** apiForTests with the api (and, unless told otherwise, a worker) in this test's process. */
export const stackForTests = (
  overrides: Record<string, string> = {},
  options: Parameters<typeof startInProcess>[1] = {},
  prepare?: (stack: Stack) => Promise<unknown>,
): Stack => apiForTests(overrides, (env) => startInProcess(env, options), prepare);

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
