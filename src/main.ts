// Every program in one process, for a laptop: api, worker and controller, plus a local
// S3-compatible server outside production.
import { homedir } from "node:os";
import { createApi, listenApi } from "./api/api.ts";
import { prepareUploadDir } from "./api/upload-intake.ts";
import { startController } from "./controller/controller.ts";
import { findKubeConfig } from "./controller/kubernetes.ts";
import { createLogger } from "./core/logger.ts";
import { runMain } from "./core/main-runner.ts";
import { createMetrics } from "./core/metrics.ts";
import { brokerReadiness, startOpsServer } from "./core/ops-server.ts";
import { openRuntime } from "./core/runtime.ts";
import { startLocalS3 } from "./core/storage/local-s3.ts";
import { startWorker } from "./worker/worker.ts";

runMain("sluice", async ({ config, log, shutdown, faults }) => {
  if (config.env !== "production" && config.s3.endpoint && config.s3.credentials) {
    const localS3 = await startLocalS3(config.s3.endpoint, config.s3.credentials, ".data/s3", log);
    if (localS3) shutdown.add("close", "local S3", localS3.close);
  }
  await prepareUploadDir(config.uploadDir);
  const runtime = await openRuntime(config, log);
  shutdown.add("close", "connections", runtime.close);

  const workerLog = createLogger("worker", config.logLevel);
  const workerMetrics = createMetrics("worker");
  const consumer = await startWorker(config, runtime, workerMetrics, workerLog, faults);
  shutdown.add("drain", "consumer", consumer.stop);
  const workerOps = await startOpsServer(
    config.ports.worker,
    workerMetrics.registry,
    consumer.unanswered,
  );
  shutdown.add("close", "worker ops server", workerOps.close);

  const controllerLog = createLogger("controller", config.logLevel);
  const controllerMetrics = createMetrics("controller");
  const kubeConfig = findKubeConfig(process.env, homedir());
  const controller = startController(config, runtime, controllerMetrics, controllerLog, kubeConfig);
  shutdown.add("drain", "controller", controller.stop);
  const controllerOps = await startOpsServer(
    config.ports.controller,
    controllerMetrics.registry,
    brokerReadiness(runtime.broker),
  );
  shutdown.add("close", "controller ops server", controllerOps.close);

  const api = createApi(
    config,
    runtime,
    createMetrics("api"),
    createLogger("api", config.logLevel),
    faults,
  );
  const server = await listenApi(api, config.ports.api);
  shutdown.add("stop", "progress streams", api.progress.close);
  shutdown.add("stop", "http server", () => new Promise((resolve) => server.close(resolve)));
  shutdown.add("drain", "publisher", api.publisher.stop);
  shutdown.add("close", "parsing thread", api.parser.close);
  await api.publisher.resumeUnfinished();
  log.info(
    { api: `http://127.0.0.1:${config.ports.api}`, auth: config.apiKeys ? "on" : "off" },
    "sluice running",
  );
  if (!config.apiKeys) log.warn("authentication is off: every request acts as the default tenant");
});
