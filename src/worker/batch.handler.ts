// Lands one batch: S3 first, then PostgreSQL in one transaction, then the live view.
import type { S3Client } from "@aws-sdk/client-s3";
import type pg from "pg";
import type { BatchHeaders } from "../core/batch-message.ts";
import type { Db } from "../core/db/database.ts";
import type { Faults } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import type { WorkerMetrics } from "../core/metrics.ts";
import type { StatusStore } from "../core/status/status.store.ts";
import { deleteObject, putJson } from "../core/storage/s3.ts";
import { batchKey } from "../core/storage/s3-keys.ts";
import { type LandOutcome, landBatch } from "./rows.repository.ts";

/** A batch that can never land; it goes straight to the dead-letter queue. */
export class PermanentError extends Error {
  override name = "PermanentError";
}

export type BatchDeps = Readonly<{
  db: Db;
  pool: pg.Pool;
  s3: S3Client;
  bucket: string;
  status: StatusStore;
  statementTimeoutMs: number;
  faults: Faults;
  metrics: WorkerMetrics;
  log: Logger;
}>;

export async function handleBatch(
  deps: BatchDeps,
  batch: BatchHeaders,
  body: Buffer,
): Promise<Exclude<LandOutcome, { kind: "unknown-upload" }>> {
  const { metrics } = deps;
  // The key depends only on the batch, so a redelivery overwrites the same object.
  const putDone = metrics.s3PutSeconds.startTimer();
  const key = batchKey(batch.uploadId, batch.seq);
  await putJson(deps.s3, deps.bucket, key, deps.faults.s3Body(body), body.byteLength);
  putDone();
  deps.faults.hit("after-s3-put");
  const insertDone = metrics.dbInsertSeconds.startTimer();
  const outcome = await landBatch(deps.pool, batch, body, deps.statementTimeoutMs);
  insertDone();
  switch (outcome.kind) {
    case "unknown-upload":
      throw new PermanentError(`upload ${batch.uploadId} does not exist`);
    case "landed":
      deps.faults.hit("before-view");
      metrics.rowsLanded.inc(batch.rows);
      metrics.rowErrors.inc(batch.rowErrors);
      if (outcome.progress.justCompleted) {
        const view = await deps.status.refresh(batch.uploadId);
        metrics.uploadsFinished.inc({ status: "completed" });
        if (view?.completedAt) {
          metrics.uploadSeconds.observe(
            (Date.parse(view.completedAt) - Date.parse(view.createdAt)) / 1000,
          );
        }
        deps.log.info(
          { uploadId: batch.uploadId, rows: outcome.progress.rowsLanded },
          "upload completed",
        );
      } else {
        await deps.status.advance(batch.uploadId, outcome.progress);
      }
      break;
    case "duplicate":
      // The first delivery may have died between its commit and the view update.
      await deps.status.refresh(batch.uploadId);
      deps.log.info(
        { uploadId: batch.uploadId, seq: batch.seq },
        "batch already landed; nothing to do",
      );
      break;
    case "skipped":
      // The object went to S3 before the upload was found purged, and the purge may have
      // listed the upload's objects already: this batch's goes here. (A purge recorded after
      // the landing waits for it, through the landing lock, and finds the object itself.)
      if (outcome.purged) await deleteObject(deps.s3, deps.bucket, key);
      deps.log.info(
        { uploadId: batch.uploadId, seq: batch.seq, status: outcome.status },
        "upload closed; batch skipped",
      );
      break;
  }
  return outcome;
}

export type FailureStep = { kind: "retry"; queueAttempt: number } | { kind: "dead" };

/** What to do with a delivery that failed on its `attempt`-th try. */
export function afterFailure(
  attempt: number,
  maxAttempts: number,
  permanent: boolean,
): FailureStep {
  if (permanent || attempt >= maxAttempts) return { kind: "dead" };
  return { kind: "retry", queueAttempt: attempt };
}
