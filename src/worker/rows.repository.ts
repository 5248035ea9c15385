// Lands one batch in PostgreSQL in one transaction, so that a redelivered batch lands nothing twice.
import { sql } from "kysely";
import type { BatchHeaders } from "../core/batch-message.ts";
import type { Db, UploadStatus } from "../core/db/database.ts";

export type LandOutcome =
  | { kind: "landed"; progress: Progress }
  | { kind: "duplicate" }
  | { kind: "skipped"; status: UploadStatus }
  | { kind: "unknown-upload" };

export type Progress = {
  status: UploadStatus;
  batchesLanded: number;
  batchesTotal: number;
  rowsLanded: number;
  justCompleted: boolean;
};

/** Uploads in these states take no more rows. */
const CLOSED: UploadStatus[] = ["cancelled", "rejected"];

export async function landBatch(
  db: Db,
  batch: BatchHeaders,
  body: string,
  statementTimeoutMs: number,
): Promise<LandOutcome> {
  return db.transaction().execute(async (tx) => {
    await sql`select set_config('statement_timeout', ${String(statementTimeoutMs)}, true)`.execute(tx);
    const upload = await tx
      .selectFrom("uploads")
      .select("status")
      .where("id", "=", batch.uploadId)
      .executeTakeFirst();
    if (!upload) return { kind: "unknown-upload" } as const;
    if (CLOSED.includes(upload.status)) return { kind: "skipped", status: upload.status } as const;

    // The primary key makes a concurrent second delivery wait for the first, then find it.
    const claimed = await tx
      .insertInto("upload_batches")
      .values({ upload_id: batch.uploadId, seq: batch.seq, rows: batch.rows, row_errors: batch.rowErrors })
      .onConflict((oc) => oc.doNothing())
      .returning("seq")
      .executeTakeFirst();
    if (!claimed) return { kind: "duplicate" } as const;

    // PostgreSQL decodes the batch JSON itself: the worker never parses the rows.
    if (batch.rows > 0) {
      await sql`
        insert into upload_rows (upload_id, row_number, data)
        select ${batch.uploadId}::uuid, (r ->> 'row')::bigint, r -> 'data'
        from jsonb_array_elements(${body}::jsonb -> 'rows') as r`.execute(tx);
    }
    if (batch.rowErrors > 0) {
      await sql`
        insert into row_errors (upload_id, row_number, line, code, message)
        select ${batch.uploadId}::uuid, (e ->> 'row')::bigint, (e ->> 'line')::bigint, e ->> 'code', e ->> 'message'
        from jsonb_array_elements(${body}::jsonb -> 'errors') as e`.execute(tx);
    }

    // Last, so the row lock on the upload is held only for the commit.
    const progress = await sql<Progress>`
      update uploads set
        batches_landed = batches_landed + 1,
        rows_landed = rows_landed + ${batch.rows},
        status = case
          when status not in ('queued', 'processing') then status
          when batches_landed + 1 = batches_total then 'completed'
          else 'processing' end,
        completed_at = case
          when status in ('queued', 'processing') and batches_landed + 1 = batches_total then now()
          else completed_at end,
        last_progress_at = now(),
        updated_at = now()
      where id = ${batch.uploadId}
      returning
        status,
        batches_landed as "batchesLanded",
        batches_total as "batchesTotal",
        rows_landed as "rowsLanded",
        coalesce(completed_at = now(), false) as "justCompleted"`.execute(tx);
    return { kind: "landed", progress: progress.rows[0] as Progress } as const;
  });
}
