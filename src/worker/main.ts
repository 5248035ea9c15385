import { runMain } from "../core/main-runner.ts";
import { createMetrics } from "../core/metrics.ts";
import { startOpsServer } from "../core/ops-server.ts";
import { openRuntime } from "../core/runtime.ts";
import { startLocalS3 } from "../core/storage/local-s3.ts";
import { startWorker } from "./worker.ts";

runMain("worker", async ({ config, log, shutdown, faults }) => {
  if (config.env !== "production" && config.s3.endpoint && config.s3.credentials) {
    const localS3 = await startLocalS3(config.s3.endpoint, config.s3.credentials, ".data/s3", log);
    if (localS3) shutdown.add("close", "local S3", localS3.close);
  }
  const runtime = await openRuntime(config, log);
  shutdown.add("close", "connections", runtime.close);
  const metrics = createMetrics("worker");
  const consumer = await startWorker(config, runtime, metrics, log, faults);
  shutdown.add("drain", "consumer", consumer.stop);
  const ops = await startOpsServer(config.ports.worker, metrics.registry, consumer.unanswered);
  shutdown.add("close", "ops server", ops.close);
  log.info({ port: config.ports.worker }, "worker running");
});
