// Keeps an upload's publishing no more than a bounded number of batches ahead of its landing,
// so that RabbitMQ holds a bounded part of a large file instead of all of it. The worker's
// progress arrives by Redis pub/sub (the view it announces after each batch); PostgreSQL,
// read again only while publishing waits and nothing is heard, covers a lost message.
import type { Db } from "../../core/db/database.ts";
import { findUpload } from "../../core/db/uploads.repository.ts";
import type { UploadView } from "../../core/uploads/upload-view.ts";
import type { ProgressHub } from "../progress/progress-hub.ts";

/** While waiting, how long without news from Redis before PostgreSQL is asked. */
const RECHECK_MS = 2_000;

/** The upload left queued and processing (failed, cancelled): its publishing stops here. */
export class UploadClosedError extends Error {
  override name = "UploadClosedError";
  readonly status: string;
  constructor(status: string) {
    super(`the upload is ${status}`);
    this.status = status;
  }
}

/** True when batch `seq` may be published with `landed` batches landed (seqs start at 1). */
export function hasRoom(seq: number, landed: number, maxInFlight: number): boolean {
  return seq - 1 - landed < maxInFlight;
}

/**
 * Once held, publishing waits for this many batches more to land before it goes on, so that
 * it wakes once per few landings rather than for each.
 */
export const resumeSlack = (maxInFlight: number) => Math.floor(maxInFlight / 8);

export type LandingWatch = Readonly<{
  /** Whether batch `seq` may be published now, as far as the watch has heard. */
  hasRoom(seq: number): boolean;
  /**
   * Resolves once batch `seq` may be published. Rejects with UploadClosedError when the
   * upload stops taking batches, and with the signal's reason when it is aborted.
   */
  waitForRoom(seq: number, signal: AbortSignal): Promise<void>;
  close(): void;
}>;

export function watchLanding(
  db: Db,
  progress: ProgressHub,
  id: string,
  maxInFlight: number,
  recheckMs = RECHECK_MS,
): LandingWatch {
  let landed = 0;
  let status = "queued";
  /** Whether `landed` came from Redis or PostgreSQL yet, rather than from nothing. */
  let known = false;
  let wake: (() => void) | undefined;
  const learn = (batchesLanded: number, newStatus: string) => {
    landed = Math.max(landed, batchesLanded);
    status = newStatus;
    known = true;
    wake?.();
  };
  // Made at the first wait: an upload that never fills its bound never listens. Not awaited:
  // while Redis is away publishing still moves, on PostgreSQL's answers alone.
  let listening: Promise<(() => void) | undefined> | undefined;
  const listen = () =>
    progress
      .listen(id, {
        view: (view: UploadView) => learn(view.batches.landed, view.status),
        // The hub's connection went (or the hub closed): the next wait listens again.
        closed: () => {
          listening = undefined;
        },
      })
      .catch(() => undefined);
  let closed = false;

  const reread = async () => {
    const upload = await findUpload(db, id);
    if (upload) learn(upload.batches_landed, upload.status);
  };

  return {
    hasRoom: (seq) => hasRoom(seq, landed, maxInFlight),
    async waitForRoom(seq, signal) {
      listening ??= listen();
      // Landings before the watch listened were not heard: the first wait reads them.
      if (!known) await reread();
      if (hasRoom(seq, landed, maxInFlight)) return;
      const resumeAt = seq + resumeSlack(maxInFlight);
      while (!hasRoom(resumeAt, landed, maxInFlight)) {
        if (!["queued", "processing"].includes(status)) throw new UploadClosedError(status);
        signal.throwIfAborted();
        const heard = await new Promise<boolean>((resolve) => {
          const done = (news: boolean) => {
            wake = undefined;
            clearTimeout(timer);
            signal.removeEventListener("abort", aborted);
            resolve(news);
          };
          const timer = setTimeout(() => done(false), recheckMs);
          const aborted = () => done(true);
          signal.addEventListener("abort", aborted, { once: true });
          wake = () => done(true);
        });
        if (!heard) await reread();
      }
    },
    close() {
      if (closed) return;
      closed = true;
      void listening?.then((stop) => stop?.());
    },
  };
}
