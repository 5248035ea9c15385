// The worker program: consumes batches from RabbitMQ and lands them in S3 and PostgreSQL.

import type { AddressInfo } from "node:net";
import { createMetrics } from "../core/metrics.ts";
import { readyWhenAnswered } from "../core/program/ops-answers.ts";
import { startOpsServer } from "../core/program/ops-server.ts";
import type { Program, ProgramRuntime, RunningProgram } from "../core/program/program.ts";
import { readinessMs } from "../core/program/runtime.ts";
import { bucketExists } from "../core/storage/s3.ts";
import { type BatchDeps, handleBatch, UnsettledCommits } from "./batch-handler.ts";
import { startConsumer } from "./consumer.ts";

export async function start(runtime: ProgramRuntime): Promise<RunningProgram> {
  const { config, log, shutdown, s3 } = runtime;
  const { bucket } = config.s3;
  const metrics = createMetrics("worker");
  const s3Answers = async () => {
    // Given up with the check, so that a silent S3 does not collect unanswered requests.
    if (!(await bucketExists(s3, bucket, AbortSignal.timeout(readinessMs(config))))) {
      throw new Error(`bucket ${bucket} does not exist`);
    }
  };
  const deps: BatchDeps = {
    db: runtime.db,
    pool: runtime.pool,
    s3,
    bucket,
    status: runtime.status,
    statementTimeoutMs: config.worker.statementTimeoutMs,
    metrics,
    faults: runtime.faults,
    log,
    unsettled: new UnsettledCommits(),
  };
  // The consumer acknowledges deliveries and routes failures; what lands a batch is handed to
  // it here, so that the landing is one step from the start and its COPY two.
  const consumer = await startConsumer({
    broker: runtime.broker,
    namespace: config.namespace,
    prefetch: config.worker.prefetch,
    maxAttempts: config.worker.maxAttempts,
    land: (batch, body) => handleBatch(deps, batch, body),
    deps,
  });
  shutdown.add("drain", "consumer", consumer.stop);
  // Readiness: each service a batch needs that does not answer.
  const ops = await startOpsServer(config.ports.worker, runtime.host, {
    registry: metrics.registry,
    readiness: readyWhenAnswered(() =>
      runtime.unanswered([{ dependency: "S3", answers: s3Answers }]),
    ),
  });
  shutdown.add("close", "ops server", ops.close);
  log.info({ port: (ops.server.address() as AddressInfo).port }, "worker running");
  return { url: ops.url, stop: () => shutdown.run("stopped") };
}

export const workerProgram: Program = { name: "worker", needs: { bucket: true }, start };
