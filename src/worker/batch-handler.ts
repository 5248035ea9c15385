// Lands one batch: S3 first, then PostgreSQL in one transaction, then the live view.
import type { S3Client } from "@aws-sdk/client-s3";
import type pg from "pg";
import type { Db } from "../core/db/database.ts";
import {
  CommitUnsettled,
  committed,
  type LandOutcome,
  landBatch,
} from "../core/db/rows.repository.ts";
import type { Faults } from "../core/faults.ts";
import type { Logger } from "../core/logger.ts";
import type { WorkerMetrics } from "../core/metrics.ts";
import type { StatusStore } from "../core/status/status-store.ts";
import { deleteObject, putJson } from "../core/storage/s3.ts";
import { batchKey } from "../core/storage/s3-keys.ts";
import type { BatchHeaders } from "../core/uploads/batch-message.ts";

/** A batch that can never land; it goes straight to the dead-letter queue. */
export class PermanentError extends Error {
  override name = "PermanentError";
}

/**
 * Batches whose commit this process sent without hearing the answer, with their transaction
 * ids. When such a batch comes back and is found landed, the id tells whether this process's
 * commit landed it, and so whether its rows are still to be counted.
 */
export class UnsettledCommits {
  /** Enough for every batch in hand through a long outage; the oldest go first. */
  static readonly LIMIT = 10_000;
  readonly #xids = new Map<string, string>();

  remember(key: string, xid: string): void {
    if (this.#xids.size >= UnsettledCommits.LIMIT) {
      this.#xids.delete(this.#xids.keys().next().value as string);
    }
    this.#xids.set(key, xid);
  }

  /** Whether this process's unanswered commit of the batch at `key` is what landed it. */
  async landedHere(pool: pg.Pool, key: string): Promise<boolean> {
    const xid = this.#xids.get(key);
    if (xid === undefined) return false;
    const landed = await committed(pool, xid);
    this.#xids.delete(key);
    return landed;
  }

  forget(key: string): void {
    this.#xids.delete(key);
  }
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
  unsettled: UnsettledCommits;
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
  const outcome = await landBatch(
    deps.pool,
    batch,
    body,
    deps.statementTimeoutMs,
    deps.faults,
  ).catch((err: unknown) => {
    if (err instanceof CommitUnsettled) deps.unsettled.remember(key, err.xid);
    throw err;
  });
  insertDone();
  const countLanded = (refused = 0) => {
    metrics.rowsLanded.inc(batch.rows - refused);
    metrics.rowErrors.inc(batch.rowErrors + refused);
  };
  if (outcome.kind !== "duplicate") deps.unsettled.forget(key);
  switch (outcome.kind) {
    case "unknown-upload":
      throw new PermanentError(`upload ${batch.uploadId} does not exist`);
    case "landed":
      deps.faults.hit("before-view");
      countLanded(outcome.refused);
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
      } else if (outcome.refused > 0) {
        // The view's row errors grew too, which an advance does not carry.
        await deps.status.refresh(batch.uploadId);
      } else {
        await deps.status.advance(batch.uploadId, outcome.progress);
      }
      break;
    case "duplicate":
      // This process's own commit may have landed it without hearing so: its rows count now.
      if (await deps.unsettled.landedHere(deps.pool, key)) countLanded();
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
