// Takes an upload from first byte to 202: record it, store and validate the body, queue it.
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import type { Config } from "../core/config.ts";
import type { Db } from "../core/db/database.ts";
import {
  insertUploadWithinLimit,
  markQueued,
  markRejected,
  markValidating,
  touchUpload,
} from "../core/db/uploads.repository.ts";
import type { Logger } from "../core/logger.ts";
import type { ApiMetrics } from "../core/metrics.ts";
import type { StatusStore } from "../core/status/status.store.ts";
import type { UploadView } from "../core/upload-view.ts";
import { AppError } from "./app-error.ts";
import type { BatchPublisher } from "./batch-publisher.ts";
import type { CsvReaderOptions } from "./csv/csv-reader.ts";
import type { IntakeParser } from "./intake-parser.ts";
import { receiveUpload, storedPath } from "./upload-intake.ts";

export type UploadsServiceDeps = Readonly<{
  db: Db;
  status: StatusStore;
  publisher: BatchPublisher;
  parser: IntakeParser;
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
};

/** How often a body still arriving marks its upload as alive. */
const INTAKE_HEARTBEAT_MS = 30_000;
/** Seconds a tenant at its limit is asked to wait; uploads take a while to land. */
const ACTIVE_RETRY_AFTER_SECONDS = 30;

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

export function createUploadsService(deps: UploadsServiceDeps) {
  const { db, status, limits } = deps;

  return {
    async accept(upload: NewUpload): Promise<UploadView> {
      const id = randomUUID();
      const log = deps.log.child({ uploadId: id, tenant: upload.tenant });
      const recorded = await insertUploadWithinLimit(
        db,
        { id, tenant: upload.tenant, filename: sanitizeFilename(upload.filename) },
        limits.maxActiveUploadsPerTenant,
      );
      if (!recorded) {
        throw new AppError(
          "TooManyActiveUploads",
          429,
          `${limits.maxActiveUploadsPerTenant} uploads of yours are in progress; retry when one has finished`,
          {
            details: { limit: limits.maxActiveUploadsPerTenant },
            headers: { "retry-after": String(ACTIVE_RETRY_AFTER_SECONDS) },
          },
        );
      }
      let bytes = 0;
      let heartbeat: number | undefined;
      const onChunk = async (received: number) => {
        deps.metrics.bytesReceived.inc(received - bytes);
        bytes = received;
        if (heartbeat === undefined) {
          heartbeat = Date.now();
          await markValidating(db, id);
          await status.refresh(id);
        } else if (Date.now() - heartbeat >= INTAKE_HEARTBEAT_MS) {
          // A long body keeps its upload counted against the tenant's limit; one cut off
          // with a crashed api stops counting once the beats stop.
          heartbeat = Date.now();
          await touchUpload(db, id);
        }
      };
      try {
        await status.refresh(id);
        const intake = await receiveUpload(upload.body, {
          uploadDir: deps.uploadDir,
          id,
          maxBytes: limits.maxUploadBytes,
          batchSize: limits.batchSize,
          parser: deps.parser,
          onChunk,
          csv: {
            encoding: upload.encoding,
            delimiter: upload.delimiter,
            maxColumns: limits.maxColumns,
            maxFieldBytes: limits.maxFieldBytes,
            maxRowBytes: limits.maxRowBytes,
          },
        });
        const { summary } = intake;
        const batchesTotal = intake.batches;
        await markQueued(db, id, {
          bytes: intake.bytes,
          sha256: intake.sha256,
          encoding: summary.header.encoding,
          delimiter: summary.header.delimiter,
          columns: summary.header.columns,
          rowsTotal: summary.rows,
          rowErrors: summary.rowErrors,
          blankLines: summary.blankLines,
          batchesTotal,
        });
        const view = await status.refresh(id);
        log.info(
          {
            bytes: intake.bytes,
            rows: summary.rows,
            rowErrors: summary.rowErrors,
            batches: batchesTotal,
          },
          "upload queued",
        );
        deps.publisher.start({ id, batchesTotal });
        return view as UploadView;
      } catch (err) {
        const problem =
          err instanceof AppError
            ? { code: err.code, message: err.message, details: { ...err.where, ...err.details } }
            : { code: "Interrupted", message: "the upload did not finish" };
        await markRejected(db, id, bytes, problem).catch((recordErr: Error) =>
          log.warn({ err: recordErr.message }, "could not record the rejection"),
        );
        deps.metrics.uploadsFinished.inc({ status: "rejected" });
        // A failure after the body was stored (Redis gone before the answer) leaves its file.
        await rm(storedPath(deps.uploadDir, id), { force: true });
        await status.refresh(id).catch(() => undefined);
        log.info({ code: problem.code, bytes }, "upload rejected");
        throw err instanceof AppError ? err.forUpload(id) : err;
      }
    },
  };
}

export type UploadsService = ReturnType<typeof createUploadsService>;
