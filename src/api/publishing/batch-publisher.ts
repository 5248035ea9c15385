// Publishes a stored upload's batches (batch-spool.ts) as one message each, with publisher
// confirms in a bounded window so that a slow broker slows the api instead of filling its
// memory, and at most maxInFlight batches ahead of the workers (landing-watch.ts) so that
// slow workers slow publishing instead of filling RabbitMQ. Progress is stored as it goes, so a restarted api resumes where it stopped; a
// batch published twice is harmless because the worker lands each batch once.
import { access, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Broker } from "../../core/broker/broker.ts";
import { publishConfirmed } from "../../core/broker/confirm.ts";
import { queueNames } from "../../core/broker/queue-names.ts";
import type { Db } from "../../core/db/database.ts";
import {
  claimPublishing,
  failBatchesLost,
  findUnclaimed,
  findUnpublished,
  findUpload,
  PUBLISHING_LEASE_SECONDS,
  recordPublished,
  releasePublishing,
  renewPublishing,
} from "../../core/db/uploads.repository.ts";
import type { Faults } from "../../core/faults.ts";
import type { Logger } from "../../core/logger.ts";
import type { ApiMetrics } from "../../core/metrics.ts";
import type { StatusStore } from "../../core/status/status-store.ts";
import { encodeHeaders } from "../../core/uploads/batch-message.ts";
import { readSpool, SpoolDamagedError } from "../intake/batch-spool.ts";
import { removePartialFiles, removeStoredBatches, storedPath } from "../intake/upload-intake.ts";
import type { ProgressHub } from "../progress/progress-hub.ts";
import { UploadClosedError, watchLanding } from "./landing-watch.ts";

export type PublisherOptions = Readonly<{
  broker: Broker;
  db: Db;
  status: StatusStore;
  namespace: string;
  uploadDir: string;
  /** Unconfirmed messages allowed at once. */
  window?: number;
  /** Batches of one upload published and not yet landed, at most. */
  maxInFlight: number;
  /** The workers' progress, which lets publishing go on. */
  progress: ProgressHub;
  faults: Faults;
  metrics: Pick<
    ApiMetrics,
    "batchesPublished" | "rowsPublished" | "uploadsHeld" | "uploadsFinished"
  >;
  log: Logger;
  /** This api replica, as named in the leases it holds on the uploads it publishes. */
  replica: string;
}>;

export type Publication = { id: string; batchesTotal: number };

export type BatchPublisher = Readonly<{
  /** Publishes in the background until done, cancelled or stopped. */
  start(publication: Publication): void;
  cancel(id: string): void;
  /**
   * Publishes the rest of an upload that takes batches again (re-driven) and whose stored
   * batches are here; false when there is nothing to publish from this api.
   */
  resume(id: string): Promise<boolean>;
  /** Picks up the uploads whose publishing an earlier run left unfinished. */
  resumeUnfinished(): Promise<number>;
  /** Stops publishing; stored progress lets the next start resume. */
  stop(): Promise<void>;
  /**
   * Publishes what it has started, taking nothing new, for up to `withinMs` (without it, until
   * done); then stops the rest as stop() does.
   */
  finish(withinMs?: number): Promise<void>;
}>;

const PROGRESS_EVERY_MS = 1_000;
/** Leases are renewed, and lapsed ones looked for, a few times per lease. */
const LEASE_CHECK_MS = (PUBLISHING_LEASE_SECONDS * 1000) / 3;
const CANCELLED = new Error("cancelled");
const TAKEN_OVER = new Error("another api replica publishes the upload now");
const PUBLISHING_AT_ONCE = 4;

export function createBatchPublisher(options: PublisherOptions): BatchPublisher {
  const { broker, db, log } = options;
  const names = queueNames(options.namespace);
  const window = options.window ?? 16;
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>();

  /** One pass over the spool; returns normally only when every batch is confirmed. */
  async function publishFrom(
    publication: Publication,
    confirmedBefore: number,
    signal: AbortSignal,
  ) {
    const { id } = publication;
    const channel = await (await broker.connected()).createConfirmChannel();
    const landing = watchLanding(db, options.progress, id, options.maxInFlight);
    const pending: Array<{
      seq: number;
      rows: number;
      confirmed: Promise<void>;
      memory?: Buffer;
    }> = [];
    let confirmed = confirmedBefore;
    let lastRecorded = Date.now();
    /** The count PostgreSQL holds, which the live view and the controller read. */
    let recorded = confirmedBefore;
    let waited = false;
    const record = async () => {
      lastRecorded = Date.now();
      const upTo = confirmed;
      const status = await recordPublished(db, id, upTo);
      recorded = Math.max(recorded, upTo);
      return status;
    };
    // Bodies are read into memory taken back once RabbitMQ confirms their batch, when nothing
    // can still be sending it. A new buffer per batch is garbage that V8 frees only at the main
    // thread's next GC, and it piled up while an upload published (docs/capacity.md, Memory).
    const spare: Buffer[] = [];
    let lent: Buffer | undefined;
    const lend = (length: number) => {
      let memory = spare.pop();
      if (memory === undefined || memory.length < length) {
        memory = Buffer.allocUnsafeSlow(length + (length >> 3));
      }
      lent = memory;
      return memory.subarray(0, length);
    };

    const settleOldest = async () => {
      const oldest = pending.shift();
      if (!oldest) return;
      await oldest.confirmed;
      if (oldest.memory) spare.push(oldest.memory);
      confirmed = oldest.seq;
      options.faults.hit("after-publish");
      options.metrics.batchesPublished.inc();
      options.metrics.rowsPublished.inc(oldest.rows);
      if (Date.now() - lastRecorded >= PROGRESS_EVERY_MS) {
        // A cancel sent to another api process is heard here.
        const status = await record();
        if (status !== "queued" && status !== "processing") {
          throw new UploadClosedError(status ?? "gone");
        }
        // The live view shows publishing progress too, not only landing.
        await options.status.refresh(id);
      }
    };
    const path = storedPath(options.uploadDir, id);
    try {
      for await (const batch of readSpool(path, confirmedBefore, lend)) {
        if (signal.aborted) throw signal.reason;
        if (!landing.hasRoom(batch.seq)) {
          while (pending.length > 0) await settleOldest();
          // What is published is recorded before a wait that may be long: before the first at
          // once, before the next at the usual pace, so once PROGRESS_EVERY_MS is up when a
          // record was made less than that ago. A count left behind while nothing lands would
          // read as an api that stopped publishing.
          let late: NodeJS.Timeout | undefined;
          if (confirmed > recorded) {
            const due = waited ? lastRecorded + PROGRESS_EVERY_MS - Date.now() : 0;
            if (due <= 0) await record();
            else late = setTimeout(() => record().catch(() => undefined), due);
          }
          waited = true;
          options.metrics.uploadsHeld.inc();
          try {
            await landing.waitForRoom(batch.seq, signal);
          } finally {
            clearTimeout(late);
            options.metrics.uploadsHeld.dec();
          }
        }
        const confirmedBatch = publishConfirmed(
          channel,
          names.batches,
          batch.body,
          {
            contentType: "application/json",
            messageId: `${id}/${batch.seq}`,
            headers: encodeHeaders({
              uploadId: id,
              seq: batch.seq,
              rows: batch.rows,
              rowErrors: batch.rowErrors,
              attempt: 1,
            }),
          },
          broker.confirmWithin,
        );
        // Awaited in order below; this keeps an early rejection from going unhandled.
        confirmedBatch.catch(() => undefined);
        pending.push({ seq: batch.seq, rows: batch.rows, confirmed: confirmedBatch, memory: lent });
        while (pending.length >= window) await settleOldest();
      }
      while (pending.length > 0) await settleOldest();
      if (confirmed < publication.batchesTotal) {
        throw new SpoolDamagedError(
          path,
          `ends after batch ${confirmed} of ${publication.batchesTotal}`,
        );
      }
      await recordPublished(db, id, confirmed);
    } catch (err) {
      // The batches sent before the damage are confirmed, so that the upload's record says
      // how far it got; none is sent again.
      if (err instanceof SpoolDamagedError) while (pending.length > 0) await settleOldest();
      throw err;
    } finally {
      landing.close();
      await channel.close().catch(() => undefined);
      if (confirmed > confirmedBefore)
        await recordPublished(db, id, confirmed).catch(() => undefined);
    }
  }

  // A few uploads publish at a time and the rest wait their turn, so the api's memory stays
  // bounded however many uploads arrive at once; a turn passes straight to the next in line.
  let publishing = 0;
  const waiting: Array<() => void> = [];
  async function takeTurn(): Promise<() => void> {
    if (publishing < PUBLISHING_AT_ONCE) publishing++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    return () => {
      const next = waiting.shift();
      if (next) next();
      else publishing--;
    };
  }

  async function publish(publication: Publication, signal: AbortSignal): Promise<void> {
    // One replica publishes an upload at a time; should it die, its lease lapses and a replica
    // sharing its stored batches takes over from what was recorded as published.
    try {
      if (await claimPublishing(db, publication.id, options.replica)) {
        await publishUntilDone(publication, signal);
      }
    } finally {
      // Published, closed or stopping: another replica may take what is left at once.
      await releasePublishing(db, publication.id, options.replica).catch(() => undefined);
      // A cancelled upload's batches will never be published: they go now, not at a restart.
      if (signal.reason === CANCELLED) {
        await rm(storedPath(options.uploadDir, publication.id), { force: true });
      }
    }
  }

  /** Publishing found the upload closed: its stored batches go, unless a re-drive needs them. */
  async function closed(id: string, status: string): Promise<void> {
    const plog = log.child({ uploadId: id });
    // A failed upload keeps its stored batches: a re-drive publishes the rest.
    if (status === "failed") {
      plog.info({ status }, "upload closed; publishing stopped");
      return;
    }
    await rm(storedPath(options.uploadDir, id), { force: true });
    plog.info({ status }, "upload closed; publishing stopped and its stored batches removed");
  }

  async function publishUntilDone(publication: Publication, signal: AbortSignal): Promise<void> {
    const plog = log.child({ uploadId: publication.id });
    for (let attempt = 1; !signal.aborted; attempt++) {
      // Held for one pass only: an upload waiting to try again holds no turn meanwhile.
      const release = await takeTurn();
      let failure: Error;
      try {
        if (signal.aborted) return;
        const upload = await findUpload(db, publication.id).catch(() => undefined);
        if (upload && !["queued", "processing"].includes(upload.status)) {
          await closed(publication.id, upload.status);
          return;
        }
        const from = upload?.batches_published ?? 0;
        if (from < publication.batchesTotal) await publishFrom(publication, from, signal);
        await options.status.refresh(publication.id).catch(() => undefined);
        await rm(storedPath(options.uploadDir, publication.id), { force: true });
        plog.info({ batches: publication.batchesTotal }, "all batches published");
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof UploadClosedError) {
          await closed(publication.id, err.status);
          return;
        }
        if (spoolGone(err, publication.id)) {
          await batchesLost(
            publication.id,
            "the api's stored batches of this upload are gone before every batch was published; send the file again",
          );
          return;
        }
        if (err instanceof SpoolDamagedError) {
          // Every pass would find the same: the rest of the file cannot be published.
          await batchesLost(
            publication.id,
            `the api's stored batches of this upload are damaged (the file ${err.what}); send the file again`,
          );
          await rm(storedPath(options.uploadDir, publication.id), { force: true });
          return;
        }
        failure = err as Error;
      } finally {
        release();
      }
      const delay = Math.min(250 * 2 ** attempt, 10_000);
      plog.warn({ err: failure.message, attempt, delay }, "publishing interrupted; resuming");
      await sleep(delay, undefined, { signal }).catch(() => undefined);
    }
  }

  const spoolGone = (err: unknown, id: string) =>
    (err as NodeJS.ErrnoException).code === "ENOENT" &&
    (err as NodeJS.ErrnoException).path === storedPath(options.uploadDir, id);

  /**
   * The stored batches are gone (the folder lost with a pod) or damaged (cut short): nothing
   * can publish the rest.
   */
  async function batchesLost(id: string, message: string): Promise<void> {
    const failed = await failBatchesLost(db, id, { code: "BatchesLost", message });
    if (!failed) return;
    options.metrics.uploadsFinished.inc({ status: "failed" });
    await options.status.refresh(id).catch(() => undefined);
    log.error(
      { uploadId: id, reason: message },
      "stored batches unusable before all were published; upload failed",
    );
  }

  /** Renews this replica's leases, and takes over the uploads of replicas that died. */
  async function tendLeases(): Promise<void> {
    const mine = [...running.keys()];
    const held = new Set(await renewPublishing(db, mine, options.replica));
    for (const id of mine) {
      if (!held.has(id)) running.get(id)?.abort.abort(TAKEN_OVER);
    }
    for (const upload of await findUnclaimed(db)) {
      if (running.has(upload.id) || upload.batches_total === null) continue;
      if (!(await stored(upload.id))) continue;
      log.info({ uploadId: upload.id }, "taking over the publishing of an upload");
      start({ id: upload.id, batchesTotal: upload.batches_total });
    }
  }
  let tending = false;
  const leaseTimer = setInterval(() => {
    if (tending) return;
    tending = true;
    tendLeases()
      .catch((err: Error) => log.warn({ err: err.message }, "could not tend publishing leases"))
      .finally(() => {
        tending = false;
      });
  }, LEASE_CHECK_MS);
  leaseTimer.unref();

  const stored = (id: string) =>
    access(storedPath(options.uploadDir, id)).then(
      () => true,
      () => false,
    );

  function start(publication: Publication): void {
    if (running.has(publication.id)) return;
    const abort = new AbortController();
    const done = publish(publication, abort.signal)
      .catch((err) =>
        log.error({ uploadId: publication.id, err: (err as Error).message }, "publishing failed"),
      )
      .finally(() => running.delete(publication.id));
    running.set(publication.id, { abort, done });
  }

  async function stop(): Promise<void> {
    clearInterval(leaseTimer);
    for (const { abort } of running.values()) abort.abort(new Error("stopping"));
    await Promise.allSettled([...running.values()].map((r) => r.done));
  }

  return {
    start,
    cancel(id) {
      const run = running.get(id);
      if (run) run.abort.abort(CANCELLED);
      else void rm(storedPath(options.uploadDir, id), { force: true }).catch(() => undefined);
    },
    async resume(id) {
      const upload = await findUpload(db, id);
      if (!upload || !["queued", "processing"].includes(upload.status)) return false;
      if (upload.batches_total === null || upload.batches_published >= upload.batches_total) {
        return false;
      }
      if (!(await stored(id))) return false;
      start({ id, batchesTotal: upload.batches_total });
      return true;
    },
    async resumeUnfinished() {
      let resumed = 0;
      const unpublished = await findUnpublished(db);
      for (const upload of unpublished) {
        if (!(await stored(upload.id)) || upload.batches_total === null) continue;
        start({ id: upload.id, batchesTotal: upload.batches_total });
        resumed++;
      }
      // Stored batches that nothing will publish: an earlier run stopped between an upload's
      // end (cancelled, rejected, all published) and removing them. Those of an upload still
      // being received stay, as its body may be arriving at this very process, and those of
      // a failed one, for a re-drive.
      const resuming = new Set(unpublished.map((upload) => upload.id));
      const removed = await removeStoredBatches(db, options.uploadDir, (upload) => {
        if (!upload) return true;
        if (resuming.has(upload.id)) return false;
        return !["received", "validating", "failed"].includes(upload.status);
      });
      if (removed > 0)
        log.info({ uploads: removed }, "removed the stored batches of ended uploads");
      const partial = await removePartialFiles(db, options.uploadDir);
      if (partial > 0) log.info({ uploads: partial }, "removed the partial files of ended bodies");
      return resumed;
    },
    stop,
    async finish(withinMs) {
      const deadline =
        withinMs === undefined ? new AbortController().signal : AbortSignal.timeout(withinMs);
      // Publications started while finishing (a re-drive) are waited for too.
      while (running.size > 0 && !deadline.aborted) {
        const all = Promise.allSettled([...running.values()].map((r) => r.done));
        await new Promise<void>((resolve) => {
          deadline.addEventListener("abort", () => resolve(), { once: true });
          void all.then(() => resolve());
        });
      }
      if (running.size > 0) {
        log.warn({ uploads: running.size }, "stopping with uploads not yet published whole");
      }
      await stop();
    },
  };
}
