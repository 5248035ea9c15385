// Reads and writes of the uploads table: the truth about every upload.
import { type Selectable, sql } from "kysely";
import type { Db, UploadStatus, UploadsTable } from "./database.ts";

export type UploadRecord = Selectable<UploadsTable>;

export type Problem = { code: string; message: string; details?: Record<string, unknown> };

// PostgreSQL's text and jsonb hold neither NUL nor half a surrogate pair, and a problem may
// quote the file, e.g. a header name, cut short: without this the upload could not be
// recorded as rejected at all.
const storable = (text: string) => text.toWellFormed().replaceAll("\0", "\ufffd");

function problemColumns(problem: Problem) {
  return {
    error_code: problem.code,
    error_message: storable(problem.message),
    error_details: problem.details
      ? JSON.stringify(problem.details, (_key, value) =>
          typeof value === "string" ? storable(value) : value,
        )
      : null,
  };
}

export type ValidatedUpload = {
  bytes: number;
  sha256: string;
  encoding: string;
  delimiter: string;
  columns: string[];
  rowsTotal: number;
  rowErrors: number;
  blankLines: number;
  batchesTotal: number;
};

/** An intake not heard from for this long was cut off with its api and no longer counts. */
const ABANDONED_INTAKE_SECONDS = 300;

/**
 * Records a new upload unless its tenant already has `limit` uploads in progress: received
 * or validating (while their bodies still arrive), queued or processing. Returns false,
 * recording nothing, when the tenant is at its limit.
 */
export async function insertUploadWithinLimit(
  db: Db,
  upload: { id: string; tenant: string; filename: string | null },
  limit: number,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    // Two api processes counting at once would both see room for one more: the count and
    // the insert of one tenant take turns, until the transaction ends.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`sluice.uploads.${upload.tenant}`}, 0))`.execute(
      tx,
    );
    const { active } = await tx
      .selectFrom("uploads")
      .select((eb) => eb.fn.countAll<number>().as("active"))
      .where("tenant", "=", upload.tenant)
      .where((eb) =>
        eb.or([
          eb("status", "in", ["queued", "processing"]),
          eb.and([
            eb("status", "in", ["received", "validating"]),
            eb(
              "last_progress_at",
              ">",
              sql<Date>`now() - make_interval(secs => ${ABANDONED_INTAKE_SECONDS})`,
            ),
          ]),
        ]),
      )
      .executeTakeFirstOrThrow();
    if (Number(active) >= limit) return false;
    await tx
      .insertInto("uploads")
      .values({ ...upload, status: "received" })
      .execute();
    return true;
  });
}

/** Tells that an upload's body is still arriving. */
export async function touchUpload(db: Db, id: string): Promise<void> {
  await db
    .updateTable("uploads")
    .set({ last_progress_at: sql`now()` })
    .where("id", "=", id)
    .execute();
}

async function setStatus(db: Db, id: string, status: UploadStatus, from: UploadStatus[]) {
  await db
    .updateTable("uploads")
    .set({ status, updated_at: sql`now()`, last_progress_at: sql`now()` })
    .where("id", "=", id)
    .where("status", "in", from)
    .execute();
}

export const markValidating = (db: Db, id: string) => setStatus(db, id, "validating", ["received"]);

export async function markRejected(
  db: Db,
  id: string,
  bytes: number,
  problem: Problem,
): Promise<void> {
  await db
    .updateTable("uploads")
    .set({
      status: "rejected",
      bytes,
      ...problemColumns(problem),
      updated_at: sql`now()`,
    })
    .where("id", "=", id)
    .execute();
}

export async function markQueued(db: Db, id: string, upload: ValidatedUpload): Promise<void> {
  await db
    .updateTable("uploads")
    .set({
      status: "queued",
      bytes: upload.bytes,
      sha256: upload.sha256,
      encoding: upload.encoding,
      delimiter: upload.delimiter,
      columns: JSON.stringify(upload.columns),
      rows_total: upload.rowsTotal,
      row_errors: upload.rowErrors,
      blank_lines: upload.blankLines,
      batches_total: upload.batchesTotal,
      queued_at: sql<Date>`now()`,
      updated_at: sql`now()`,
      last_progress_at: sql`now()`,
    })
    .where("id", "=", id)
    .execute();
}

/** Progress only moves forward, whatever order concurrent publishers report in. */
export async function recordPublished(db: Db, id: string, batchesPublished: number): Promise<void> {
  await db
    .updateTable("uploads")
    .set({
      batches_published: sql`greatest(batches_published, ${batchesPublished})`,
      last_progress_at: sql`now()`,
    })
    .where("id", "=", id)
    .execute();
}

export async function markFailed(db: Db, id: string, problem: Problem): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({
      status: "failed",
      ...problemColumns(problem),
      updated_at: sql`now()`,
    })
    .where("id", "=", id)
    .where("status", "in", ["queued", "processing"])
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function markCancelled(db: Db, id: string): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({ status: "cancelled", updated_at: sql`now()` })
    .where("id", "=", id)
    .where("status", "in", ["received", "validating", "queued", "processing"])
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function findUpload(db: Db, id: string): Promise<UploadRecord | undefined> {
  return (await db.selectFrom("uploads").selectAll().where("id", "=", id).executeTakeFirst()) as
    | UploadRecord
    | undefined;
}

export type Page = { items: UploadRecord[]; next: string | undefined };

/**
 * Newest first; the cursor is the last item's id, so pages stay stable as uploads arrive.
 * A cursor of another tenant's upload is unknown here, like any id that is not theirs.
 */
export async function listUploads(
  db: Db,
  tenant: string,
  limit: number,
  after: string | undefined,
): Promise<Page> {
  let query = db
    .selectFrom("uploads")
    .selectAll()
    .where("tenant", "=", tenant)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .limit(limit + 1);
  if (after) {
    query = query.where(
      sql<boolean>`(created_at, id) < (select created_at, id from uploads where id = ${after} and tenant = ${tenant})`,
    );
  }
  const rows = (await query.execute()) as UploadRecord[];
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? items.at(-1)?.id : undefined };
}

export const UNFINISHED_STATUSES: UploadStatus[] = [
  "received",
  "validating",
  "queued",
  "processing",
];

/** What the controller needs of the uploads that may be stuck or were reported stuck. */
export async function findWatchedUploads(db: Db) {
  return db
    .selectFrom("uploads")
    .select([
      "id",
      "status",
      "last_progress_at",
      "batches_total",
      "batches_published",
      "batches_landed",
      "stalled",
    ])
    .where((eb) => eb.or([eb("status", "in", ["queued", "processing"]), eb("stalled", "=", true)]))
    .execute();
}

export async function countUnfinished(db: Db): Promise<Map<UploadStatus, number>> {
  const rows = await db
    .selectFrom("uploads")
    .select(["status", (eb) => eb.fn.countAll<number>().as("count")])
    .where("status", "in", UNFINISHED_STATUSES)
    .groupBy("status")
    .execute();
  return new Map(rows.map((row) => [row.status, Number(row.count)]));
}

/** Leaves last_progress_at alone: it is what tells the controller when the upload moves again. */
export async function markStalled(db: Db, id: string, reason: string): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({ stalled: true, stalled_reason: reason, updated_at: sql`now()` })
    .where("id", "=", id)
    .where("stalled", "=", false)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function clearStalled(db: Db, id: string): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({ stalled: false, stalled_reason: null, updated_at: sql`now()` })
    .where("id", "=", id)
    .where("stalled", "=", true)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Uploads whose batches were not all published, e.g. because the api stopped. */
export async function findUnpublished(db: Db): Promise<UploadRecord[]> {
  return (await db
    .selectFrom("uploads")
    .selectAll()
    .where("status", "in", ["queued", "processing"])
    .whereRef("batches_published", "<", "batches_total")
    .orderBy("created_at")
    .execute()) as UploadRecord[];
}
