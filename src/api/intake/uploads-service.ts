// Takes an upload from first byte to 202: record it, store and validate the body, queue it.
import { createHash, randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import type { Config } from "../../core/config.ts";
import type { Db } from "../../core/db/database.ts";
import {
  findUpload,
  insertUploadWithinLimit,
  markQueued,
  markRejected,
  markValidating,
  touchUpload,
  type UploadRecord,
} from "../../core/db/uploads.repository.ts";
import type { Logger } from "../../core/logger.ts";
import type { ApiMetrics } from "../../core/metrics.ts";
import type { StatusStore } from "../../core/status/status-store.ts";
import type { TargetSnapshot } from "../../core/targets/target-definition.ts";
import { toUploadView, type UploadView } from "../../core/uploads/upload-view.ts";
import { AppError } from "../http/app-error.ts";
import type { BatchPublisher } from "../publishing/batch-publisher.ts";
import type { CsvReaderOptions } from "./csv/csv-reader.ts";
import type { ParsingThreadClient } from "./parsing-thread-client.ts";
import { receiveUpload, storedPath } from "./upload-intake.ts";

export type UploadsServiceDeps = Readonly<{
  db: Db;
  status: StatusStore;
  publisher: BatchPublisher;
  parser: ParsingThreadClient;
  uploadDir: string;
  limits: Config["limits"];
  metrics: Pick<ApiMetrics, "bytesReceived" | "uploadsFinished">;
  log: Logger;
}>;

export type NewUpload = {
  tenant: string;
  filename: string | null;
  body: AsyncIterable<Buffer>;
  encoding?: CsvReaderOptions["encoding"];
  delimiter?: CsvReaderOptions["delimiter"];
  /** The client's Idempotency-Key: a retry with it answers with the upload it first made. */
  idempotencyKey?: string;
  /** The target the rows go to, as it is now; the JSON rows of upload_rows without one. */
  target?: TargetSnapshot;
};

/** The upload a POST made, or (`replayed`) the one its Idempotency-Key made before. */
export type Accepted = { view: UploadView; replayed: boolean };

/** How often a body still arriving marks its upload as alive. */
const INTAKE_HEARTBEAT_MS = 30_000;

/** SHA-256 of a body read to its end, at most `maxBytes` of it. */
async function hashBody(body: AsyncIterable<Buffer>, maxBytes: number): Promise<string> {
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of body) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        throw new AppError("TooLarge", `the upload is larger than the limit of ${maxBytes} bytes`, {
          where: { byte: maxBytes },
        });
      }
      hash.update(chunk);
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError("InvalidBody", "the request body could not be read to its end", {
      cause: err,
    });
  }
  return hash.digest("hex");
}

// Control characters, line and paragraph separators, and the bidirectional controls that
// make "gpj.exe" read as "exe.jpg".
const UNSHOWABLE = /[\p{Cc}\p{Zl}\p{Zp}\p{Bidi_Control}]/gu;

/** Keeps only a file name: no path, nothing that breaks or disguises a line, bounded length. */
export function sanitizeFilename(name: string | null): string | null {
  if (!name) return null;
  const base = name.split(/[\\/]/).pop() ?? "";
  const clean = [...base.replace(UNSHOWABLE, "").trim()].slice(0, 255).join("");
  return clean === "" ? null : clean;
}

/** The upload was cancelled, or ended as abandoned, while its body arrived. */
function closedWhileReceiving(id: string, cancelled: boolean): AppError {
  return cancelled
    ? new AppError("Cancelled", `upload ${id} was cancelled while its body arrived`)
    : new AppError("Conflict", `upload ${id} was ended while its body arrived`);
}

/** What a body still arriving at an api that stops is told, and recorded with. */
const shuttingDown = () =>
  new AppError(
    "ShuttingDown",
    "this api is stopping and took no more of the upload; send the file again",
  );

export function createUploadsService(deps: UploadsServiceDeps) {
  const { db, status, limits } = deps;
  /** Uploads whose body this process receives, whether a cancel came for them, and their stop. */
  const receiving = new Map<string, { cancelled: boolean; stop: AbortController }>();
  let stopping = false;

  /**
   * A retry of an upload already made with the same Idempotency-Key: the same upload if the
   * body is the same file, never a second load of it.
   */
  async function replay(earlier: UploadRecord, body: AsyncIterable<Buffer>): Promise<Accepted> {
    if (earlier.status === "received" || earlier.status === "validating") {
      // Its body still arrives (a rejected attempt frees its key): nothing to compare yet.
      throw new AppError(
        "IdempotencyKeyInUse",
        "an upload with this Idempotency-Key is still being received; retry once it is answered",
        {
          details: { uploadId: earlier.id },
        },
      );
    }
    const sha256 = await hashBody(body, limits.maxUploadBytes);
    // An upload cancelled while its body arrived has no hash: it is answered as it is.
    if (earlier.sha256 !== null && sha256 !== earlier.sha256) {
      throw new AppError(
        "IdempotencyKeyReused",
        "this Idempotency-Key was sent with a different file; use a new key for a new upload",
        { details: { uploadId: earlier.id } },
      );
    }
    const view = (await status.get(earlier.id)) ?? toUploadView(earlier);
    deps.log.info(
      { uploadId: earlier.id, tenant: earlier.tenant, status: view.status },
      "upload retried with its Idempotency-Key; answered with the upload",
    );
    return { view, replayed: true };
  }

  return {
    /** Stops receiving the upload's body, if this process receives it. */
    cancelIntake(id: string): void {
      const intake = receiving.get(id);
      if (intake) intake.cancelled = true;
    },

    /** Takes no more uploads, and ends those whose bodies still arrive, each told why. */
    stopReceiving(): void {
      stopping = true;
      for (const intake of receiving.values()) intake.stop.abort(shuttingDown());
    },

    async accept(upload: NewUpload): Promise<Accepted> {
      if (stopping) throw shuttingDown();
      const id = randomUUID();
      const log = deps.log.child({ uploadId: id, tenant: upload.tenant });
      const admission = await insertUploadWithinLimit(
        db,
        {
          id,
          tenant: upload.tenant,
          filename: sanitizeFilename(upload.filename),
          idempotencyKey: upload.idempotencyKey,
          target: upload.target,
        },
        limits.maxActiveUploadsPerTenant,
      );
      if (admission.kind === "existing") return replay(admission.upload, upload.body);
      if (admission.kind === "at-limit") {
        throw new AppError(
          "TooManyActiveUploads",
          `${limits.maxActiveUploadsPerTenant} uploads of yours are in progress; retry when one has finished`,
          {
            details: { limit: limits.maxActiveUploadsPerTenant },
          },
        );
      }
      let bytes = 0;
      let heartbeat: number | undefined;
      const intake = { cancelled: false, stop: new AbortController() };
      receiving.set(id, intake);
      // The api began to stop while the upload was being recorded.
      if (stopping) intake.stop.abort(shuttingDown());
      let closed: AppError | undefined;
      const onChunk = async (received: number) => {
        deps.metrics.bytesReceived.inc(received - bytes);
        bytes = received;
        if (intake.cancelled) {
          closed = closedWhileReceiving(id, true);
          throw closed;
        }
        if (heartbeat === undefined) {
          heartbeat = Date.now();
          await markValidating(db, id);
          await status.refresh(id);
        } else if (Date.now() - heartbeat >= INTAKE_HEARTBEAT_MS) {
          // A long body keeps its upload counted against the tenant's limit; one cut off
          // with a crashed api stops counting once the beats stop. A cancel sent to another
          // api process is heard here.
          heartbeat = Date.now();
          if (!(await touchUpload(db, id))) {
            closed = closedWhileReceiving(id, (await findUpload(db, id))?.status === "cancelled");
            throw closed;
          }
        }
      };
      try {
        await status.refresh(id);
        const stored = await receiveUpload(upload.body, {
          uploadDir: deps.uploadDir,
          id,
          maxBytes: limits.maxUploadBytes,
          batchSize: limits.batchSize,
          parser: deps.parser,
          target: upload.target,
          onChunk,
          signal: intake.stop.signal,
          csv: {
            encoding: upload.encoding,
            delimiter: upload.delimiter,
            maxColumns: limits.maxColumns,
            maxFieldBytes: limits.maxFieldBytes,
            maxRowBytes: limits.maxRowBytes,
          },
        });
        const { summary } = stored;
        const batchesTotal = stored.batches;
        const queued = await markQueued(db, id, {
          bytes: stored.bytes,
          sha256: stored.sha256,
          encoding: summary.header.encoding,
          delimiter: summary.header.delimiter,
          columns: summary.header.columns,
          rowsTotal: summary.rows,
          rowErrors: summary.rowErrors,
          blankLines: summary.blankLines,
          batchesTotal,
        });
        if (!queued) {
          closed = closedWhileReceiving(id, (await findUpload(db, id))?.status === "cancelled");
          throw closed;
        }
        const view = await status.refresh(id);
        log.info(
          {
            bytes: stored.bytes,
            rows: summary.rows,
            rowErrors: summary.rowErrors,
            batches: batchesTotal,
          },
          "upload queued",
        );
        deps.publisher.start({ id, batchesTotal });
        return { view: view as UploadView, replayed: false };
      } catch (err) {
        // A failure after the body was stored (Redis gone before the answer) leaves its file.
        await rm(storedPath(deps.uploadDir, id), { force: true });
        if (closed) {
          log.info({ code: closed.code, bytes }, "upload closed while its body arrived");
          await status.refresh(id).catch(() => undefined);
          throw closed.forUpload(id);
        }
        const problem =
          err instanceof AppError
            ? { code: err.code, message: err.message, details: { ...err.where, ...err.details } }
            : { code: "Interrupted", message: "the upload did not finish" };
        const rejected = await markRejected(db, id, bytes, problem).catch((recordErr: Error) => {
          log.warn({ err: recordErr.message }, "could not record the rejection");
          return false;
        });
        if (rejected) deps.metrics.uploadsFinished.inc({ status: "rejected" });
        await status.refresh(id).catch(() => undefined);
        log.info({ code: problem.code, bytes }, "upload rejected");
        throw err instanceof AppError ? err.forUpload(id) : err;
      } finally {
        receiving.delete(id);
      }
    },
  };
}

export type UploadsService = ReturnType<typeof createUploadsService>;
