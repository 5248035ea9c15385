// Purge: deletes an upload's data (rows, row errors, S3 objects) and keeps its record, on
// request (DELETE /uploads/:id/data) or after RETENTION_DAYS (the controller). Every step is
// idempotent and the request is recorded first, so a purge cut short finishes when it runs
// again, by request or by the controller's next pass.
import { DeleteObjectsCommand, ListObjectsCommand, type S3Client } from "@aws-sdk/client-s3";
import type { Db } from "../db/database.ts";
import {
  deleteRowErrors,
  deleteRowsUpTo,
  findPurgeDue,
  markPurged,
  requestPurge,
} from "../db/purge.repository.ts";
import { uploadPrefix } from "../storage/s3-keys.ts";

export type PurgeDeps = Readonly<{ db: Db; s3: S3Client; bucket: string }>;

/** Row numbers deleted per statement: short transactions, whatever the size of the upload. */
const ROWS_PER_DELETE = 50_000;
/** Uploads a controller pass purges at most; the next pass takes the rest. */
const PURGES_PER_PASS = 20;

/** A bucket that does not exist (never made, or removed) holds none of the upload's objects. */
const isNoSuchBucket = (err: unknown) => (err as { name?: string }).name === "NoSuchBucket";

async function deleteObjects(deps: PurgeDeps, id: string): Promise<void> {
  // Version 1 listings, as elsewhere: s3rver's version 2 page tokens need a cipher Node 24
  // no longer has. Each page is deleted before the next is read, so the listing restarts.
  try {
    for (;;) {
      const page = await deps.s3.send(
        new ListObjectsCommand({ Bucket: deps.bucket, Prefix: uploadPrefix(id), MaxKeys: 1000 }),
      );
      const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key as string }));
      if (keys.length === 0) return;
      const deleted = await deps.s3.send(
        new DeleteObjectsCommand({ Bucket: deps.bucket, Delete: { Objects: keys, Quiet: true } }),
      );
      if (deleted.Errors && deleted.Errors.length > 0) {
        throw new Error(`S3 refused to delete ${deleted.Errors.length} object(s) of upload ${id}`);
      }
    }
  } catch (err) {
    // Nothing left to delete is what a purge wants, not a failure of it.
    if (!isNoSuchBucket(err)) throw err;
  }
}

/**
 * Deletes the data of an upload whose purge was requested, then records it purged. The
 * per-batch landing records stay (a few bytes per batch): a late delivery of a batch finds
 * its claim and lands nothing.
 */
export async function runPurge(deps: PurgeDeps, id: string): Promise<void> {
  const { db } = deps;
  let upTo = ROWS_PER_DELETE;
  while (await deleteRowsUpTo(db, id, upTo)) upTo += ROWS_PER_DELETE;
  await deleteRowErrors(db, id);
  await deleteObjects(deps, id);
  await markPurged(db, id);
}

/**
 * Purges what is due: purges requested and not finished, and with `retentionDays` finished
 * uploads created longer ago. Returns the uploads purged.
 */
export async function purgeDue(
  deps: PurgeDeps,
  retentionDays: number | undefined,
): Promise<string[]> {
  const due = await findPurgeDue(deps.db, retentionDays, PURGES_PER_PASS);
  const purged: string[] = [];
  for (const id of due) {
    if ((await requestPurge(deps.db, id)).kind !== "started") continue;
    await runPurge(deps, id);
    purged.push(id);
  }
  return purged;
}
