// Purge: deletes an upload's data (rows, row errors, S3 objects) and keeps its record, on
// request (DELETE /uploads/:id/data) or after RETENTION_DAYS (the controller). Every step is
// idempotent and the request is recorded first, so a purge cut short finishes when it runs
// again, by request or by the controller's next pass.
import { DeleteObjectsCommand, ListObjectsCommand, type S3Client } from "@aws-sdk/client-s3";
import { sql } from "kysely";
import type { Db } from "./db/database.ts";
import { landingLockName } from "./db/uploads.repository.ts";
import { uploadPrefix } from "./storage/s3-keys.ts";

export type PurgeDeps = Readonly<{ db: Db; s3: S3Client; bucket: string }>;

/** Row numbers deleted per statement: short transactions, whatever the size of the upload. */
const ROWS_PER_DELETE = 50_000;
/** Uploads a controller pass purges at most; the next pass takes the rest. */
const PURGES_PER_PASS = 20;

export const PURGEABLE = ["completed", "failed", "cancelled", "rejected"] as const;

export type PurgeRequest =
  | { kind: "started" }
  | { kind: "unknown" }
  /** Still receiving, queued or processing: cancel it first. */
  | { kind: "in-progress"; status: string };

/**
 * Records the purge of a finished upload, which from then on takes no batch again: batches
 * being landed (a failed upload's others may still be) commit first, as for a cancel.
 */
export async function requestPurge(db: Db, id: string): Promise<PurgeRequest> {
  return db.transaction().execute(async (tx): Promise<PurgeRequest> => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${landingLockName(id)}, 0))`.execute(
      tx,
    );
    const upload = await tx
      .selectFrom("uploads")
      .select(["status"])
      .where("id", "=", id)
      .forUpdate()
      .executeTakeFirst();
    if (!upload) return { kind: "unknown" };
    if (!(PURGEABLE as readonly string[]).includes(upload.status)) {
      return { kind: "in-progress", status: upload.status };
    }
    await tx
      .updateTable("uploads")
      .set({ purge_requested_at: sql`coalesce(purge_requested_at, now())`, updated_at: sql`now()` })
      .where("id", "=", id)
      .execute();
    return { kind: "started" };
  });
}

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
  for (let upTo = ROWS_PER_DELETE; ; upTo += ROWS_PER_DELETE) {
    const deleted = await db
      .deleteFrom("upload_rows")
      .where("upload_id", "=", id)
      .where("row_number", "<=", upTo)
      .executeTakeFirst();
    if (deleted.numDeletedRows === 0n) {
      const left = await db
        .selectFrom("upload_rows")
        .select("row_number")
        .where("upload_id", "=", id)
        .limit(1)
        .executeTakeFirst();
      if (!left) break;
    }
  }
  await db.deleteFrom("row_errors").where("upload_id", "=", id).execute();
  await deleteObjects(deps, id);
  await db
    .updateTable("uploads")
    .set({ purged_at: sql`now()`, updated_at: sql`now()` })
    .where("id", "=", id)
    .where("purged_at", "is", null)
    .execute();
}

/**
 * Purges what is due: purges requested and not finished, and with `retentionDays` finished
 * uploads created longer ago. Returns the uploads purged.
 */
export async function purgeDue(
  deps: PurgeDeps,
  retentionDays: number | undefined,
): Promise<string[]> {
  const due = await deps.db
    .selectFrom("uploads")
    .select("id")
    .where("purged_at", "is", null)
    .where((eb) =>
      eb.or([
        eb("purge_requested_at", "is not", null),
        ...(retentionDays === undefined
          ? []
          : [
              eb.and([
                eb("status", "in", [...PURGEABLE]),
                eb("created_at", "<", sql<Date>`now() - make_interval(days => ${retentionDays})`),
              ]),
            ]),
      ]),
    )
    .orderBy("created_at")
    .limit(PURGES_PER_PASS)
    .execute();
  const purged: string[] = [];
  for (const { id } of due) {
    if ((await requestPurge(deps.db, id)).kind !== "started") continue;
    await runPurge(deps, id);
    purged.push(id);
  }
  return purged;
}
