// Assembles the worker from a runtime: the S3 bucket and the batch consumer.

import type { Config } from "../core/config.ts";
import type { Dependency } from "../core/dependencies.ts";
import { type Faults, NO_FAULTS } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import type { WorkerMetrics } from "../core/metrics.ts";
import { type Runtime, readinessMs } from "../core/runtime.ts";
import { openStorage } from "../core/services.ts";
import { bucketExists } from "../core/storage/s3.ts";
import { UnsettledCommits } from "./batch.handler.ts";
import { type Consumer, startConsumer } from "./consumer.ts";

export type Worker = Consumer &
  Readonly<{
    /** What the worker's /readyz lists: each service a batch needs that does not answer. */
    unanswered(): Promise<Dependency[]>;
  }>;

export async function startWorker(
  config: Config,
  runtime: Runtime,
  metrics: WorkerMetrics,
  log: Logger,
  faults: Faults = NO_FAULTS,
): Promise<Worker> {
  const s3 = await openStorage(config);
  const { bucket } = config.s3;
  const s3Answers = async () => {
    // Given up with the check, so that a silent S3 does not collect unanswered requests.
    if (!(await bucketExists(s3, bucket, AbortSignal.timeout(readinessMs(config))))) {
      throw new Error(`bucket ${bucket} does not exist`);
    }
  };
  const consumer = await startConsumer({
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
      unsettled: new UnsettledCommits(),
    },
  });
  return {
    ...consumer,
    unanswered: () => runtime.unanswered([{ dependency: "S3", answers: s3Answers }]),
  };
}
