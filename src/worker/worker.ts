// Assembles the worker from a runtime: the S3 bucket check and the batch consumer.

import type { Config } from "../core/config.ts";
import { type Faults, NO_FAULTS } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import type { WorkerMetrics } from "../core/metrics.ts";
import type { Runtime } from "../core/runtime.ts";
import { DependencyError, redactUrl } from "../core/services.ts";
import { bucketExists, createS3, ensureBucket } from "../core/storage/s3.ts";
import { type Consumer, startConsumer } from "./consumer.ts";

export async function startWorker(
  config: Config,
  runtime: Runtime,
  metrics: WorkerMetrics,
  log: Logger,
  faults: Faults = NO_FAULTS,
): Promise<Consumer> {
  const s3 = createS3(config.s3);
  const where = config.s3.endpoint ? redactUrl(config.s3.endpoint) : "AWS S3";
  try {
    // Outside production the bucket is made on first use; in production it must exist.
    if (config.env === "production") {
      if (!(await bucketExists(s3, config.s3.bucket))) {
        throw new Error(`bucket ${config.s3.bucket} does not exist`);
      }
    } else {
      await ensureBucket(s3, config.s3.bucket);
    }
  } catch (err) {
    throw new DependencyError(
      `S3 bucket ${config.s3.bucket} is not usable at ${where} (${(err as Error).message || (err as Error).name}); check AWS_ENDPOINT, the credentials and the bucket`,
      { cause: err },
    );
  }
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
