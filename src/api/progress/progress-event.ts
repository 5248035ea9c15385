// What a progress stream tells the uploader about an upload, and when it has said its last.
// It imports the upload's status only, so that the web page takes its types from here without
// the database's or Node's.
import type { UploadStatus } from "../../core/uploads/upload-status.ts";

export type ProgressEvent = {
  status: UploadStatus;
  rows: number | null;
  rowsLanded: number;
  rowErrors: number;
  batches: { landed: number; total: number | null };
  stalled: boolean;
  /** null while there is no rate to go by, or when the upload will never finish. */
  secondsLeft: number | null;
};

/** What of an upload's view an event is made from. */
type Viewed = Omit<ProgressEvent, "secondsLeft"> & { queuedAt: string | null };

const FINAL = new Set<UploadStatus>(["completed", "failed", "rejected", "cancelled"]);

export const isFinal = (status: UploadStatus) => FINAL.has(status);

/**
 * Seconds until the last batch lands at the rate batches have landed since the upload was
 * queued. Batches rather than rows: rejected rows never land, so rows would never add up.
 */
export function estimateSecondsLeft(view: Viewed, now: number): number | null {
  if (view.status === "completed") return 0;
  if (isFinal(view.status)) return null;
  const { landed, total } = view.batches;
  if (view.queuedAt === null || total === null || landed === 0) return null;
  const elapsedSeconds = (now - Date.parse(view.queuedAt)) / 1000;
  if (!(elapsedSeconds > 0)) return null;
  return Math.ceil(((total - landed) * elapsedSeconds) / landed);
}

export function toProgressEvent(view: Viewed, now: number): ProgressEvent {
  return {
    status: view.status,
    rows: view.rows,
    rowsLanded: view.rowsLanded,
    rowErrors: view.rowErrors,
    batches: { landed: view.batches.landed, total: view.batches.total },
    stalled: view.stalled,
    secondsLeft: estimateSecondsLeft(view, now),
  };
}

const RANK: Record<UploadStatus, number> = {
  received: 0,
  validating: 1,
  queued: 2,
  processing: 3,
  completed: 4,
  failed: 4,
  rejected: 4,
  cancelled: 4,
};

/**
 * Whether `next` tells the client something after `previous`. A view read just after
 * subscribing can be newer than a message published just before it, so progress never
 * goes back. A final status always gets through: it is the stream's last word.
 */
export function isNews(next: ProgressEvent, previous: ProgressEvent | undefined): boolean {
  if (!previous) return true;
  if (RANK[next.status] !== RANK[previous.status]) return RANK[next.status] > RANK[previous.status];
  if (next.batches.landed !== previous.batches.landed) {
    return next.batches.landed > previous.batches.landed;
  }
  return next.status !== previous.status || next.stalled !== previous.stalled;
}

/** One server-sent event; the id lets a reconnecting client say it has seen this one. */
export function formatEvent(event: ProgressEvent): string {
  return `id: ${event.batches.landed}\nevent: progress\ndata: ${JSON.stringify(event)}\n\n`;
}
