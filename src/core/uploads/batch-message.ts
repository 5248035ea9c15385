// The contract between api and worker: one RabbitMQ message per batch. Its body is the
// batch's JSON exactly as it is kept in S3; the headers say what the worker needs
// without parsing it.
//
// Body: {"uploadId","seq","columns":[...],"errors":[{"row":n,"line":n,"code","message"}],
//        "rows":[{"row":n,"values":[...]}]}   (see batch-layout.ts)
import { isUploadId } from "./upload-id.ts";

export type BatchHeaders = Readonly<{
  uploadId: string;
  seq: number;
  rows: number;
  rowErrors: number;
  /** 1 on first delivery; the retry path increments it. */
  attempt: number;
}>;

export class MalformedBatchError extends Error {
  override name = "MalformedBatchError";
}

export function encodeHeaders(headers: BatchHeaders): Record<string, string | number> {
  return {
    "x-upload-id": headers.uploadId,
    "x-seq": headers.seq,
    "x-rows": headers.rows,
    "x-row-errors": headers.rowErrors,
    "x-attempt": headers.attempt,
  };
}

export function decodeHeaders(raw: Record<string, unknown> | undefined): BatchHeaders {
  const uploadId = raw?.["x-upload-id"];
  const numbers = ["x-seq", "x-rows", "x-row-errors", "x-attempt"].map((name) => raw?.[name]);
  if (typeof uploadId !== "string" || !isUploadId(uploadId)) {
    throw new MalformedBatchError("batch message has no valid x-upload-id header");
  }
  if (!numbers.every((n) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0)) {
    throw new MalformedBatchError(
      "batch message has no valid x-seq, x-rows, x-row-errors or x-attempt header",
    );
  }
  const [seq, rows, rowErrors, attempt] = numbers as number[];
  return {
    uploadId,
    seq: seq as number,
    rows: rows as number,
    rowErrors: rowErrors as number,
    attempt: attempt as number,
  };
}
