// Reads and writes of the uploads table: the truth about every upload.
import { type Selectable, sql } from "kysely";
import type { TargetSnapshot } from "../targets/target-definition.ts";
import type { UploadStatus } from "../uploads/upload-status.ts";
import type { Db, UploadsTable } from "./database.ts";

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

/**
 * An intake not heard from for this long was cut off with its api: it no longer counts
 * against its tenant, and the controller ends it. A body that is still arriving says so far
 * more often (uploads-service.ts), and one that sends nothing is cut off sooner.
 */
export const ABANDONED_INTAKE_SECONDS = 300;

/** States an upload may leave; the others are final and never change. */
const OPEN: UploadStatus[] = ["received", "validating", "queued", "processing"];
const RECEIVING: UploadStatus[] = ["received", "validating"];

/**
 * The lock that makes a cancel and the landing of a batch exclude each other: a worker holds
 * it shared for the whole transaction that lands a batch, a cancel takes it exclusively before
 * it changes the status. Landings of one upload run side by side; a cancel waits for those in
 * hand to commit, and every later one sees it. The lock's key is hashtextextended(name, 0).
 */
export const landingLockName = (id: string) => `sluice.landing.${id}`;

/**
 * Which of these uploads some api is still receiving: a body arriving beats at least every
 * ABANDONED_INTAKE_SECONDS, and the controller ends the upload once it stops.
 */
export async function findReceiving(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom("uploads")
    .select("id")
    .where("id", "in", ids)
    .where("status", "in", RECEIVING)
    .where(
      "last_progress_at",
      ">",
      sql<Date>`now() - make_interval(secs => ${ABANDONED_INTAKE_SECONDS})`,
    )
    .execute();
  return new Set(rows.map((row) => row.id));
}

/** How long an Idempotency-Key names the upload it was first sent with. */
export const IDEMPOTENCY_KEY_HOURS = 24;

export type Admission =
  | { kind: "recorded" }
  | { kind: "at-limit" }
  /** The tenant sent this Idempotency-Key before: the upload it made, nothing recorded. */
  | { kind: "existing"; upload: UploadRecord };

/**
 * Records a new upload unless its tenant already has `limit` uploads in progress: received
 * or validating (while their bodies still arrive), queued or processing; or unless the
 * tenant's Idempotency-Key already names an upload. Records nothing in either case.
 */
export async function insertUploadWithinLimit(
  db: Db,
  upload: {
    id: string;
    tenant: string;
    filename: string | null;
    idempotencyKey?: string;
    /** The target's definition now: the upload keeps it, whatever becomes of the target. */
    target?: TargetSnapshot;
  },
  limit: number,
): Promise<Admission> {
  const { idempotencyKey, target, ...values } = upload;
  return db.transaction().execute(async (tx): Promise<Admission> => {
    // Two api processes counting at once would both see room for one more: the count and
    // the insert of one tenant take turns, until the transaction ends. Two attempts with
    // one Idempotency-Key take turns too, and the second finds the first's upload.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`sluice.uploads.${upload.tenant}`}, 0))`.execute(
      tx,
    );
    if (idempotencyKey !== undefined) {
      const earlier = (await tx
        .selectFrom("uploads")
        .selectAll()
        .select(
          sql<boolean>`created_at < now() - make_interval(hours => ${IDEMPOTENCY_KEY_HOURS}) or status = 'rejected' or (status in ('received', 'validating') and last_progress_at < now() - make_interval(secs => ${ABANDONED_INTAKE_SECONDS}))`.as(
            "lapsed",
          ),
        )
        .where("tenant", "=", upload.tenant)
        .where("idempotency_key", "=", idempotencyKey)
        .executeTakeFirst()) as (UploadRecord & { lapsed: boolean }) | undefined;
      if (earlier && !earlier.lapsed) {
        const { lapsed: _lapsed, ...record } = earlier;
        return { kind: "existing", upload: record };
      }
      // An expired key, or one whose attempt was rejected or died with its api, names nothing.
      if (earlier) {
        await tx
          .updateTable("uploads")
          .set({ idempotency_key: null })
          .where("id", "=", earlier.id)
          .execute();
      }
    }
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
    if (Number(active) >= limit) return { kind: "at-limit" };
    await tx
      .insertInto("uploads")
      .values({
        ...values,
        idempotency_key: idempotencyKey ?? null,
        target: target === undefined ? null : JSON.stringify(target),
        status: "received",
      })
      .execute();
    return { kind: "recorded" };
  });
}

/**
 * Tells that an upload's body is still arriving; false when the upload is no longer being
 * received (cancelled, or ended as abandoned), and its body should stop.
 */
export async function touchUpload(db: Db, id: string): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({ last_progress_at: sql`now()` })
    .where("id", "=", id)
    .where("status", "in", RECEIVING)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Every change of status names the states it may come from, so a final state stays final. */
async function setStatus(
  db: Db,
  id: string,
  status: UploadStatus,
  from: UploadStatus[],
): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({ status, updated_at: sql`now()`, last_progress_at: sql`now()` })
    .where("id", "=", id)
    .where("status", "in", from)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export const markValidating = (db: Db, id: string) => setStatus(db, id, "validating", ["received"]);

/**
 * False when a cancel came first. A queued upload may still be rejected: the api queues it,
 * then fails to answer for it before publishing anything.
 */
export async function markRejected(
  db: Db,
  id: string,
  bytes: number,
  problem: Problem,
): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({
      status: "rejected",
      bytes,
      ...problemColumns(problem),
      // A rejected attempt frees its Idempotency-Key: a retry with it is a new attempt.
      idempotency_key: null,
      updated_at: sql`now()`,
    })
    .where("id", "=", id)
    .where("status", "in", [...RECEIVING, "queued"])
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** False when the upload was no longer being received: it was cancelled while its body arrived. */
export async function markQueued(db: Db, id: string, upload: ValidatedUpload): Promise<boolean> {
  const result = await db
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
    .where("status", "in", RECEIVING)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Progress only moves forward, whatever order concurrent publishers report in. Returns the
 * upload's status, so that publishing can stop once it takes no more batches.
 */
export async function recordPublished(
  db: Db,
  id: string,
  batchesPublished: number,
): Promise<UploadStatus | undefined> {
  const row = await db
    .updateTable("uploads")
    .set({
      batches_published: sql`greatest(batches_published, ${batchesPublished})`,
      last_progress_at: sql`now()`,
    })
    .where("id", "=", id)
    .returning("status")
    .executeTakeFirst();
  return row?.status;
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

/**
 * Cancels an upload that is not finished. Once this returns true no batch of the upload
 * commits any more: the batches being landed commit first (see landingLockName), the later
 * ones find the upload cancelled.
 */
export async function markCancelled(db: Db, id: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${landingLockName(id)}, 0))`.execute(
      tx,
    );
    const result = await tx
      .updateTable("uploads")
      .set({ status: "cancelled", updated_at: sql`now()` })
      .where("id", "=", id)
      .where("status", "in", OPEN)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  });
}

/**
 * Ends the uploads whose body stopped arriving `seconds` ago without an end: their api
 * stopped while receiving them. Returns their ids.
 */
export async function rejectAbandoned(db: Db, seconds: number): Promise<string[]> {
  const rows = await db
    .updateTable("uploads")
    .set({
      status: "rejected",
      ...problemColumns({
        code: "Interrupted",
        message: "the api stopped while receiving the body; send the file again",
      }),
      idempotency_key: null,
      updated_at: sql`now()`,
    })
    .where("status", "in", RECEIVING)
    .where("last_progress_at", "<", sql<Date>`now() - make_interval(secs => ${seconds})`)
    .returning("id")
    .execute();
  return rows.map((row) => row.id);
}

export async function findUpload(db: Db, id: string): Promise<UploadRecord | undefined> {
  return (await db.selectFrom("uploads").selectAll().where("id", "=", id).executeTakeFirst()) as
    | UploadRecord
    | undefined;
}

/** Up to `limit` of the upload's rejected rows after row `after`, in row order. */
export function rowErrorsAfter(db: Db, uploadId: string, after: number, limit: number) {
  return db
    .selectFrom("row_errors")
    .select(["row_number", "line", "code", "message"])
    .where("upload_id", "=", uploadId)
    .where("row_number", ">", after)
    .orderBy("row_number")
    .limit(limit)
    .execute();
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

export const UNFINISHED_STATUSES: UploadStatus[] = OPEN;

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

/**
 * Lets a failed upload take batches again, for a re-drive of its dead letters: `processing`,
 * or `completed` when every batch has landed meanwhile. True when the upload takes batches
 * (reopened now or already queued or processing); false for one that is finished otherwise.
 */
export async function reopenFailed(db: Db, id: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const upload = await tx
      .selectFrom("uploads")
      .select(["status", "purge_requested_at"])
      .where("id", "=", id)
      .forUpdate()
      .executeTakeFirst();
    if (!upload || upload.purge_requested_at !== null) return false;
    if (upload.status === "queued" || upload.status === "processing") return true;
    if (upload.status !== "failed") return false;
    await tx
      .updateTable("uploads")
      .set({
        status: sql`case when batches_landed >= batches_total then 'completed' else 'processing' end`,
        completed_at: sql`case when batches_landed >= batches_total then now() else completed_at end`,
        error_code: null,
        error_message: null,
        error_details: null,
        updated_at: sql`now()`,
        last_progress_at: sql`now()`,
      })
      .where("id", "=", id)
      .execute();
    return true;
  });
}

/**
 * How long an api replica's right to publish an upload lasts unless renewed. A replica that
 * died loses it this long after its last renewal, and a replica sharing its stored batches
 * takes the upload over.
 */
export const PUBLISHING_LEASE_SECONDS = 30;

/**
 * Takes the right to publish an upload for `replica`: when no replica holds it, it holds it
 * already, or the holder's lease lapsed. False when another replica publishes it.
 */
export async function claimPublishing(db: Db, id: string, replica: string): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({
      publisher: replica,
      publishing_until: sql`now() + make_interval(secs => ${PUBLISHING_LEASE_SECONDS})`,
    })
    .where("id", "=", id)
    .where("status", "in", ["queued", "processing"])
    .where((eb) =>
      eb.or([
        eb("publisher", "is", null),
        eb("publisher", "=", replica),
        eb("publishing_until", "<", sql<Date>`now()`),
      ]),
    )
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Renews the leases `replica` holds among `ids`; returns the ids it still holds. */
export async function renewPublishing(db: Db, ids: string[], replica: string): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .updateTable("uploads")
    .set({
      publishing_until: sql`now() + make_interval(secs => ${PUBLISHING_LEASE_SECONDS})`,
    })
    .where("id", "in", ids)
    .where("publisher", "=", replica)
    .returning("id")
    .execute();
  return rows.map((row) => row.id);
}

/** Gives the lease up at once, so that another replica may take the upload over now. */
export async function releasePublishing(db: Db, id: string, replica: string): Promise<void> {
  await db
    .updateTable("uploads")
    .set({ publishing_until: sql`now()` })
    .where("id", "=", id)
    .where("publisher", "=", replica)
    .execute();
}

/**
 * Uploads with batches left to publish whose publisher's lease has lapsed, or that have
 * none: a replica that holds their stored batches may take them over.
 */
export async function findUnclaimed(db: Db): Promise<UploadRecord[]> {
  return (await db
    .selectFrom("uploads")
    .selectAll()
    .where("status", "in", ["queued", "processing"])
    .whereRef("batches_published", "<", "batches_total")
    .where((eb) =>
      eb.or([eb("publishing_until", "is", null), eb("publishing_until", "<", sql<Date>`now()`)]),
    )
    .orderBy("created_at")
    .execute()) as UploadRecord[];
}

/**
 * Fails the uploads with batches left to publish that no replica has published for
 * `seconds`: their api stopped and their stored batches went with it, or no replica that
 * holds them ran for that long. Returns their ids.
 */
export async function failUnpublishable(db: Db, seconds: number): Promise<string[]> {
  const rows = await db
    .updateTable("uploads")
    .set({
      status: "failed",
      ...problemColumns({
        code: "BatchesLost",
        message:
          "the api stopped before publishing every batch, and no api has its stored batches to publish the rest; send the file again",
      }),
      updated_at: sql`now()`,
    })
    .where("status", "in", ["queued", "processing"])
    .whereRef("batches_published", "<", "batches_total")
    .where(
      sql<boolean>`coalesce(publishing_until, last_progress_at) < now() - make_interval(secs => ${seconds})`,
    )
    .returning("id")
    .execute();
  return rows.map((row) => row.id);
}

/** Fails an upload whose stored batches its publisher finds gone, unless all were published. */
export async function failBatchesLost(db: Db, id: string, problem: Problem): Promise<boolean> {
  const result = await db
    .updateTable("uploads")
    .set({ status: "failed", ...problemColumns(problem), updated_at: sql`now()` })
    .where("id", "=", id)
    .where("status", "in", ["queued", "processing"])
    .whereRef("batches_published", "<", "batches_total")
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
