// What a user sees of an upload: one shape for GET responses, the Redis view and live events.
import type { UploadRecord } from "../db/uploads.repository.ts";

export type UploadView = {
  id: string;
  tenant: string;
  filename: string | null;
  status: UploadRecord["status"];
  bytes: number;
  sha256: string | null;
  encoding: string | null;
  delimiter: string | null;
  columns: string[] | null;
  rows: number | null;
  rowsLanded: number;
  rowErrors: number;
  blankLines: number | null;
  batches: { total: number | null; published: number; landed: number };
  error: { code: string; message: string; details?: Record<string, unknown> } | null;
  stalled: boolean;
  stalledReason: string | null;
  createdAt: string;
  updatedAt: string;
  queuedAt: string | null;
  completedAt: string | null;
  lastProgressAt: string;
  /** When its rows, row errors and S3 objects were deleted; the record stays. */
  purgedAt: string | null;
  /** The target its rows land in, and the version of the definition it keeps; null: JSON rows. */
  target: { name: string; version: number } | null;
};

const iso = (value: Date | string | null): string | null =>
  value === null ? null : new Date(value).toISOString();

export function toUploadView(r: UploadRecord): UploadView {
  return {
    id: r.id,
    tenant: r.tenant,
    filename: r.filename,
    status: r.status,
    bytes: r.bytes,
    sha256: r.sha256,
    encoding: r.encoding,
    delimiter: r.delimiter,
    columns: r.columns,
    rows: r.rows_total,
    rowsLanded: r.rows_landed,
    rowErrors: r.row_errors,
    blankLines: r.blank_lines,
    batches: { total: r.batches_total, published: r.batches_published, landed: r.batches_landed },
    error: r.error_code
      ? {
          code: r.error_code,
          message: r.error_message ?? "",
          ...(r.error_details ? { details: r.error_details } : {}),
        }
      : null,
    stalled: r.stalled,
    stalledReason: r.stalled_reason,
    createdAt: iso(r.created_at) as string,
    updatedAt: iso(r.updated_at) as string,
    queuedAt: iso(r.queued_at),
    completedAt: iso(r.completed_at),
    lastProgressAt: iso(r.last_progress_at) as string,
    purgedAt: iso(r.purged_at),
    target: r.target ? { name: r.target.name, version: r.target.version } : null,
  };
}
