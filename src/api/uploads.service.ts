// Takes an upload from first byte to 202: record it, store and validate the body, queue it.
import { randomUUID } from "node:crypto";
import type { Config } from "../core/config.ts";
import type { Db } from "../core/db/database.ts";
import {
  insertUpload,
  markQueued,
  markRejected,
  markValidating,
} from "../core/db/uploads.repository.ts";
import type { Logger } from "../core/logger.ts";
import type { ApiMetrics } from "../core/metrics.ts";
import type { StatusStore } from "../core/status/status.store.ts";
import type { UploadView } from "../core/upload-view.ts";
import { AppError } from "./app-error.ts";
import type { BatchPublisher } from "./batch-publisher.ts";
import type { CsvReaderOptions } from "./csv/csv-reader.ts";
import { receiveUpload } from "./upload-intake.ts";

export type UploadsServiceDeps = Readonly<{
  db: Db;
  status: StatusStore;
  publisher: BatchPublisher;
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

const isControl = (c: number) => c < 0x20 || (c >= 0x7f && c <= 0x9f);

/** Keeps only a file name: no path, no control characters, bounded length. */
export function sanitizeFilename(name: string | null): string | null {
  if (!name) return null;
  const base = name.split(/[\\/]/).pop() ?? "";
  const clean = [...base]
    .filter((char) => !isControl(char.charCodeAt(0)))
    .join("")
    .trim()
    .slice(0, 255);
  return clean === "" ? null : clean;
}

async function* announceFirstByte(body: AsyncIterable<Buffer>, onFirst: () => Promise<void>) {
  let first = true;
  for await (const chunk of body) {
    if (first && chunk.length > 0) {
      first = false;
      await onFirst();
    }
    yield chunk;
  }
}

export function createUploadsService(deps: UploadsServiceDeps) {
  const { db, status, limits } = deps;

  return {
    async accept(upload: NewUpload): Promise<UploadView> {
      const id = randomUUID();
      const log = deps.log.child({ uploadId: id });
      await insertUpload(db, {
        id,
        tenant: upload.tenant,
        filename: sanitizeFilename(upload.filename),
      });
      await status.refresh(id);
      let bytes = 0;
      const body = announceFirstByte(upload.body, async () => {
        await markValidating(db, id);
        await status.refresh(id);
      });
      const counted = (async function* () {
        for await (const chunk of body) {
          bytes += chunk.length;
          deps.metrics.bytesReceived.inc(chunk.length);
          yield chunk;
        }
      })();
      try {
        const intake = await receiveUpload(counted, {
          uploadDir: deps.uploadDir,
          id,
          maxBytes: limits.maxUploadBytes,
          csv: {
            encoding: upload.encoding,
            delimiter: upload.delimiter,
            maxColumns: limits.maxColumns,
            maxFieldBytes: limits.maxFieldBytes,
          },
        });
        const { summary } = intake;
        const batchesTotal = Math.ceil(summary.rows / limits.batchSize);
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
        deps.publisher.start({
          id,
          encoding: summary.header.encoding,
          delimiter: summary.header.delimiter,
          batchesTotal,
        });
        return view as UploadView;
      } catch (err) {
        const problem =
          err instanceof AppError
            ? { code: err.code, message: err.message, details: { ...err.where, ...err.details } }
            : { code: "Interrupted", message: "the upload did not finish" };
        await markRejected(db, id, bytes, problem).catch(() => undefined);
        deps.metrics.uploadsFinished.inc({ status: "rejected" });
        await status.refresh(id).catch(() => undefined);
        log.info({ code: problem.code, bytes }, "upload rejected");
        throw err instanceof AppError ? err.forUpload(id) : err;
      }
    },
  };
}

export type UploadsService = ReturnType<typeof createUploadsService>;
