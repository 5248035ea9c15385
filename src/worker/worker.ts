// Assembles the worker from a runtime: the S3 bucket and the batch consumer.

import type { Config } from "../core/config.ts";
import { type Faults, NO_FAULTS } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import type { WorkerMetrics } from "../core/metrics.ts";
import type { Runtime } from "../core/runtime.ts";
import { openStorage } from "../core/services.ts";
import { type Consumer, startConsumer } from "./consumer.ts";

export async function startWorker(
  config: Config,
  runtime: Runtime,
  metrics: WorkerMetrics,
  log: Logger,
  faults: Faults = NO_FAULTS,
): Promise<Consumer> {
  const s3 = await openStorage(config);
  return startConsumer({
    broker: runtime.broker,
    namespace: config.namespace,
    prefetch: config.worker.prefetch,
    maxAttempts: config.worker.maxAttempts,
    deps: {
      db: runtime.db,
      pool: runtime.pool,
      s3,
      bucket: config.s3.bucket,
      status: runtime.status,
      statementTimeoutMs: config.worker.statementTimeoutMs,
      metrics,
      faults,
      log,
    },
  });
}
