// Receives an upload body: hashes it as it arrives while the parsing thread (parsing-thread.ts)
// stores it in UPLOAD_DIR as its batches, ready to publish (batch-spool.ts). When the body
// ends Sluice knows whether the file is valid and how many rows it holds, and nothing needs
// to read it again.
import { createHash } from "node:crypto";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Db } from "../../core/db/database.ts";
import { findReceiving, findUpload, type UploadRecord } from "../../core/db/uploads.repository.ts";
import type { TargetSnapshot } from "../../core/targets/target-definition.ts";
import { isUploadId } from "../../core/uploads/upload-id.ts";
import { AppError } from "../http/app-error.ts";
import { CsvFormatError, type CsvReaderOptions, type CsvSummary } from "./csv/csv-reader.ts";
import type { ParsingThreadClient } from "./parsing-thread-client.ts";

export type Intake = {
  summary: CsvSummary;
  batches: number;
  bytes: number;
  sha256: string;
  path: string;
};

export type IntakeOptions = {
  uploadDir: string;
  id: string;
  maxBytes: number;
  batchSize: number;
  csv: CsvReaderOptions;
  /** The target the rows go to, whose mapping the header and each row are checked against. */
  target?: TargetSnapshot;
  parser: ParsingThreadClient;
  /** Called with the bytes received so far as each chunk arrives; its failures are not the body's. */
  onChunk?: (bytes: number) => Promise<void>;
  /** Ends the intake at once, body still arriving, failing it with the signal's reason. */
  signal?: AbortSignal;
};

const STORED_SUFFIX = ".batches";
const PARTIAL_SUFFIX = ".batches.part";

export const storedPath = (uploadDir: string, id: string) =>
  join(uploadDir, `${id}${STORED_SUFFIX}`);
export const partialPath = (uploadDir: string, id: string) =>
  join(uploadDir, `${id}${PARTIAL_SUFFIX}`);

/** Makes the folder; partial files left by requests that died go with removePartialFiles. */
export async function prepareUploadDir(uploadDir: string): Promise<void> {
  await mkdir(uploadDir, { recursive: true });
}

/**
 * Removes the partial files of bodies nobody receives any more. The folder may be one claim
 * shared by every api replica, so a file whose upload another replica is still receiving
 * stays; one left by a request that died goes at a later start, once the controller has
 * ended its upload. Returns how many it removed.
 */
export async function removePartialFiles(db: Db, uploadDir: string): Promise<number> {
  const partial = (await readdir(uploadDir)).filter((name) => name.endsWith(PARTIAL_SUFFIX));
  const ids = partial.map((name) => name.slice(0, -PARTIAL_SUFFIX.length));
  const receiving = await findReceiving(db, ids.filter(isUploadId));
  let removed = 0;
  for (const [i, name] of partial.entries()) {
    if (receiving.has(ids[i] as string)) continue;
    await rm(join(uploadDir, name), { force: true });
    removed++;
  }
  return removed;
}

/**
 * Removes the stored batches of each upload in `uploadDir` that `removable` says so of,
 * given its record (undefined when there is none). Returns how many it removed.
 */
export async function removeStoredBatches(
  db: Db,
  uploadDir: string,
  removable: (upload: UploadRecord | undefined) => boolean,
): Promise<number> {
  let removed = 0;
  for (const name of await readdir(uploadDir)) {
    if (!name.endsWith(STORED_SUFFIX)) continue;
    const id = name.slice(0, -STORED_SUFFIX.length);
    if (!removable(isUploadId(id) ? await findUpload(db, id) : undefined)) continue;
    await rm(join(uploadDir, name), { force: true });
    removed++;
  }
  return removed;
}

export function toAppError(err: CsvFormatError): AppError {
  const { line, column, byte, ...rest } = err.details;
  const where = Object.fromEntries(
    Object.entries({ line, column, byte }).filter(([, v]) => v !== undefined),
  );
  return new AppError(err.code, err.message, {
    where,
    details: Object.keys(rest).length > 0 ? rest : undefined,
    cause: err,
  });
}

/**
 * The next chunk, or the reason `stop` was aborted for, without waiting for a body that may
 * not send another byte. A listener per chunk, removed once it arrives: one long-lived
 * promise raced against every chunk would keep a reaction per chunk for the whole upload.
 */
function nextOrStop<T>(chunks: AsyncIterator<T>, stop: AbortSignal): Promise<IteratorResult<T>> {
  if (stop.aborted) return Promise.reject(stop.reason);
  return new Promise((resolve, reject) => {
    const stopped = () => reject(stop.reason);
    stop.addEventListener("abort", stopped, { once: true });
    chunks.next().then(
      (next) => {
        stop.removeEventListener("abort", stopped);
        resolve(next);
      },
      (err: unknown) => {
        stop.removeEventListener("abort", stopped);
        reject(err);
      },
    );
  });
}

/** Flushes a file's or a folder's contents to the disk (fsync), on libuv's pool. */
async function syncToDisk(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Stores and validates the body. On any failure the partial file is removed and an
 * AppError says what is wrong and where.
 */
export async function receiveUpload(
  source: AsyncIterable<Buffer>,
  options: IntakeOptions,
): Promise<Intake> {
  const partial = partialPath(options.uploadDir, options.id);
  const parsing = options.parser.open({
    id: options.id,
    path: partial,
    batchSize: options.batchSize,
    csv: options.csv,
    target: options.target,
  });
  const hash = createHash("sha256");
  let bytes = 0;
  let bodyFailed = false;
  // Failures of the body itself (a client that went away, a broken multipart part) are the
  // client's, not the server's: tell them apart from failures to store the file.
  const body = (async function* () {
    try {
      yield* source;
    } catch (err) {
      bodyFailed = true;
      throw err;
    }
  })();
  // A failure of the parsing thread, or the caller's stop, answers the client at once rather
  // than at its next chunk, which may never come.
  const stop = options.signal ? AbortSignal.any([options.signal, parsing.failed]) : parsing.failed;
  const chunks = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await nextOrStop(chunks, stop);
      if (next.done) break;
      const chunk = next.value;
      if (chunk.length === 0) continue;
      bytes += chunk.length;
      await options.onChunk?.(bytes);
      if (bytes > options.maxBytes) {
        throw new AppError(
          "TooLarge",
          `the upload is larger than the limit of ${options.maxBytes} bytes`,
          {
            where: { byte: options.maxBytes },
          },
        );
      }
      hash.update(chunk);
      await parsing.push(chunk);
    }
    const { summary, batches } = await parsing.end();
    const path = storedPath(options.uploadDir, options.id);
    // Once the 202 says the upload is accepted, its batches must outlive a power loss: the
    // file's bytes reach the disk before the rename names it, and the rename reaches it
    // before the answer, or the file found after a restart could be empty or short.
    await syncToDisk(partial);
    await rename(partial, path);
    await syncToDisk(options.uploadDir);
    return { summary, batches, bytes, sha256: hash.digest("hex"), path };
  } catch (err) {
    // The body may still be arriving; what reads it ends with the request, answered.
    void chunks.return?.().catch(() => undefined);
    await parsing.abort();
    await rm(partial, { force: true });
    if (err instanceof CsvFormatError) throw toAppError(err);
    if (bodyFailed && !(err instanceof AppError)) {
      throw new AppError("InvalidBody", "the request body could not be read to its end", {
        cause: err,
      });
    }
    if ((err as NodeJS.ErrnoException).code === "ENOSPC") {
      throw new AppError(
        "InsufficientStorage",
        "the server has no room to store this upload now; try again later",
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}
