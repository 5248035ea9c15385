// The queries of a purge (uploads/purge.ts): its request recorded, an upload's rows and row
// errors deleted in short statements, the uploads whose purge is due.
import { sql } from "kysely";
import type { Db } from "./database.ts";
import { landingLockName } from "./uploads.repository.ts";

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

/** Deletes the upload's rows numbered up to `upTo`; false once it has none left at all. */
export async function deleteRowsUpTo(db: Db, id: string, upTo: number): Promise<boolean> {
  const deleted = await db
    .deleteFrom("upload_rows")
    .where("upload_id", "=", id)
    .where("row_number", "<=", upTo)
    .executeTakeFirst();
  if (deleted.numDeletedRows > 0n) return true;
  const left = await db
    .selectFrom("upload_rows")
    .select("row_number")
    .where("upload_id", "=", id)
    .limit(1)
    .executeTakeFirst();
  return left !== undefined;
}

export async function deleteRowErrors(db: Db, id: string): Promise<void> {
  await db.deleteFrom("row_errors").where("upload_id", "=", id).execute();
}

export async function markPurged(db: Db, id: string): Promise<void> {
  await db
    .updateTable("uploads")
    .set({ purged_at: sql`now()`, updated_at: sql`now()` })
    .where("id", "=", id)
    .where("purged_at", "is", null)
    .execute();
}

/**
 * Up to `limit` uploads not yet purged, oldest first, whose purge was requested or, with
 * `retentionDays`, that finished and were created longer ago.
 */
export async function findPurgeDue(
  db: Db,
  retentionDays: number | undefined,
  limit: number,
): Promise<string[]> {
  const due = await db
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
    .limit(limit)
    .execute();
  return due.map(({ id }) => id);
}
