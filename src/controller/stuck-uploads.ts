// Which uploads are stuck, since when, and why: a pure decision over what the database and
// RabbitMQ say now. The stalled flag on the upload remembers what was already reported, so
// each stuck episode is reported once, even across controller restarts.
import type { UploadStatus } from "../core/uploads/upload-status.ts";

export type WatchedUpload = Readonly<{
  id: string;
  status: UploadStatus;
  lastProgressAt: Date;
  batchesTotal: number | null;
  batchesPublished: number;
  batchesLanded: number;
  stalled: boolean;
}>;

/** What RabbitMQ says; undefined when it could not be asked. */
export type QueueSignals = Readonly<{
  consumers: number | undefined;
  deadLetters: number | undefined;
}>;

export type StuckCause = "no_consumers" | "dead_letters" | "publishing_stopped" | "unknown";

export const CAUSE_DESCRIPTIONS: Readonly<Record<StuckCause, string>> = {
  no_consumers: "no worker consumes the batch queue",
  dead_letters: "batches are waiting in the dead-letter queue",
  publishing_stopped: "the api stopped publishing its batches",
  unknown: "no known cause; workers are consuming but its batches do not land",
};

export type StuckUpload = Readonly<{
  upload: WatchedUpload;
  stuckForSeconds: number;
  cause: StuckCause;
}>;

export type Assessment = Readonly<{
  /** Stuck and not reported yet: report them and set their flag. */
  newlyStuck: StuckUpload[];
  /** Stuck and already reported. */
  stillStuck: StuckUpload[];
  /** Reported as stuck, and since then moved again or finished: report and clear the flag. */
  recovered: WatchedUpload[];
}>;

const WATCHED: ReadonlySet<UploadStatus> = new Set(["queued", "processing"]);

export function likelyCause(upload: WatchedUpload, queue: QueueSignals): StuckCause {
  if (upload.batchesLanded < upload.batchesPublished) {
    if (queue.consumers === 0) return "no_consumers";
    if (queue.deadLetters !== undefined && queue.deadLetters > 0) return "dead_letters";
    return "unknown";
  }
  if (upload.batchesTotal !== null && upload.batchesPublished < upload.batchesTotal) {
    return "publishing_stopped";
  }
  return "unknown";
}

export function assessUploads(
  uploads: readonly WatchedUpload[],
  queue: QueueSignals,
  now: Date,
  stuckAfterSeconds: number,
): Assessment {
  const newlyStuck: StuckUpload[] = [];
  const stillStuck: StuckUpload[] = [];
  const recovered: WatchedUpload[] = [];
  for (const upload of uploads) {
    const idleSeconds = Math.max(0, (now.getTime() - upload.lastProgressAt.getTime()) / 1000);
    const stuck = WATCHED.has(upload.status) && idleSeconds >= stuckAfterSeconds;
    if (stuck) {
      const verdict = {
        upload,
        stuckForSeconds: Math.floor(idleSeconds),
        cause: likelyCause(upload, queue),
      };
      (upload.stalled ? stillStuck : newlyStuck).push(verdict);
    } else if (upload.stalled) {
      recovered.push(upload);
    }
  }
  return { newlyStuck, stillStuck, recovered };
}

/** "45s", "3m 20s", "2h 5m": as precise as someone reading an alert needs. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  if (hours > 0) return `${hours}h ${minutes}m`;
  if (minutes > 0) return `${minutes}m ${seconds}s`;
  return `${seconds}s`;
}

const batches = (upload: WatchedUpload) =>
  `${upload.batchesLanded} of ${upload.batchesTotal ?? "?"} batches landed, ${upload.batchesPublished} published`;

export function describeStuck(stuck: StuckUpload): string {
  return `Upload ${stuck.upload.id} has made no progress for ${formatDuration(stuck.stuckForSeconds)} (${batches(stuck.upload)}); likely cause: ${CAUSE_DESCRIPTIONS[stuck.cause]}`;
}

export function describeRecovered(upload: WatchedUpload): string {
  return `Upload ${upload.id} is moving again: ${upload.status} (${batches(upload)})`;
}
