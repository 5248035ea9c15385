// Sluice's HTTP api as the page uses it. The key travels only in the Authorization header,
// never in a URL.
import { type ProgressEvent, toProgressEvent } from "../src/api/progress/progress-event.ts";
import type { UploadStatus } from "../src/core/uploads/upload-status.ts";
import { readCsvRecords } from "./csv.ts";
import { readSse } from "./sse.ts";

export type { ProgressEvent };

export type Upload = {
  id: string;
  filename: string | null;
  status: UploadStatus;
  bytes: number;
  rows: number | null;
  rowsLanded: number;
  rowErrors: number;
  batches: { total: number | null; published: number; landed: number };
  error: { code: string; message: string; line?: number } | null;
  /** The target its rows land in, with the version of the definition it keeps; null: JSON rows. */
  target: { name: string; version: number } | null;
  createdAt: string;
};

/** A tenant's target as GET /targets lists it; the page needs only what it shows. */
export type Target = {
  name: string;
  schema: string;
  table: string;
  mode: "insert" | "upsert" | "skip";
  version: number;
};

export const FINAL: ReadonlySet<UploadStatus> = new Set([
  "completed",
  "failed",
  "rejected",
  "cancelled",
]);

/** An answer other than the one hoped for, with the api's code and message when it sent them. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | undefined;
  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function errorFrom(status: number, text: string, retryAfter: string | null): ApiError {
  const seconds = retryAfter === null ? undefined : Number(retryAfter) || undefined;
  try {
    const { error } = JSON.parse(text) as {
      error: { code: string; message: string; line?: number; column?: number };
    };
    const where = error.line === undefined ? "" : ` (line ${error.line})`;
    return new ApiError(status, error.code, `${error.message}${where}`, seconds);
  } catch {
    return new ApiError(status, `HTTP${status}`, `the server answered ${status}`, seconds);
  }
}

const headers = (key: string): Record<string, string> =>
  key === "" ? {} : { Authorization: `Bearer ${key}` };

async function call<T>(key: string, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(path, {
    ...init,
    headers: { ...headers(key), Accept: "application/json" },
    cache: "no-store",
  });
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text, response.headers.get("retry-after"));
  return JSON.parse(text) as T;
}

export type Sending = { done: Promise<Upload>; abort(): void };

/**
 * Sends the file as multipart (so the upload keeps its name) with XMLHttpRequest, whose
 * upload events count the bytes as they go; fetch reports none for a request body.
 */
export function sendFile(
  key: string,
  file: File,
  target: string,
  onBytes: (sent: number, total: number) => void,
): Sending {
  const xhr = new XMLHttpRequest();
  const done = new Promise<Upload>((resolve, reject) => {
    xhr.open("POST", target === "" ? "/uploads" : `/uploads?target=${encodeURIComponent(target)}`);
    for (const [name, value] of Object.entries(headers(key))) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      onBytes(e.loaded, e.lengthComputable ? e.total : file.size);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 202) resolve(JSON.parse(xhr.responseText) as Upload);
      else reject(errorFrom(xhr.status, xhr.responseText, xhr.getResponseHeader("retry-after")));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "NetworkError", "the connection to the server broke")),
    );
    xhr.addEventListener("abort", () =>
      reject(new ApiError(0, "Aborted", "the upload was stopped before the file was sent")),
    );
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

export const getUpload = (key: string, id: string) =>
  call<Upload>(key, `/uploads/${encodeURIComponent(id)}`);

export const listUploads = (key: string, next?: string) =>
  call<{ items: Upload[]; next: string | null }>(key, next ?? "/uploads?limit=20");

export const listTargets = (key: string) => call<{ items: Target[] }>(key, "/targets");

export const cancelUpload = (key: string, id: string) =>
  call<Upload>(key, `/uploads/${encodeURIComponent(id)}`, { method: "DELETE" });

/**
 * Follows an upload's progress stream until its final status, reconnecting when the stream
 * ends early (an api restarting) and waiting as long as a refusal's Retry-After asks.
 */
export async function followProgress(
  key: string,
  id: string,
  onProgress: (progress: ProgressEvent) => void,
  signal: AbortSignal,
): Promise<ProgressEvent> {
  let last: ProgressEvent | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`/uploads/${encodeURIComponent(id)}/events`, {
        headers: {
          ...headers(key),
          Accept: "text/event-stream",
          ...(last ? { "Last-Event-ID": String(last.batches.landed) } : {}),
        },
        cache: "no-store",
        signal,
      });
      if (response.status === 204) {
        // The upload had already ended: its record says the last of it.
        const upload = await getUpload(key, id);
        return toProgressEvent({ ...upload, stalled: false, queuedAt: null }, Date.now());
      }
      if (!response.ok || !response.body) {
        throw errorFrom(
          response.status,
          await response.text(),
          response.headers.get("retry-after"),
        );
      }
      for await (const message of readSse(response.body)) {
        if (message.event !== "progress") continue;
        last = JSON.parse(message.data) as ProgressEvent;
        onProgress(last);
        attempt = 0;
        if (FINAL.has(last.status)) return last;
      }
      throw new ApiError(0, "StreamEnded", "the progress stream ended before the upload did");
    } catch (err) {
      if (signal.aborted) throw err;
      // A refusal that waiting will not change ends the watch; so do many failures in a row.
      if (err instanceof ApiError && [400, 401, 403, 404].includes(err.status)) throw err;
      if (attempt >= 8) throw err;
      const wait = err instanceof ApiError && err.retryAfter ? err.retryAfter : 2 ** attempt;
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 30) * 1000));
    }
  }
}

export type RowError = { row: string; line: string; code: string; message: string };

/** The first `limit` rejected rows, read from the CSV the api streams; the rest is not read. */
export async function firstRowErrors(key: string, id: string, limit: number): Promise<RowError[]> {
  const response = await fetch(`/uploads/${encodeURIComponent(id)}/errors`, {
    headers: headers(key),
    cache: "no-store",
  });
  if (!response.ok || !response.body) {
    throw errorFrom(response.status, await response.text(), null);
  }
  const errors: RowError[] = [];
  let header = true;
  for await (const [row = "", line = "", code = "", message = ""] of readCsvRecords(
    response.body,
  )) {
    if (header) {
      header = false;
      continue;
    }
    errors.push({ row, line, code, message });
    if (errors.length >= limit) break;
  }
  return errors;
}

/** The whole CSV of rejected rows, for the browser to save. */
export async function rowErrorsFile(key: string, id: string): Promise<Blob> {
  const response = await fetch(`/uploads/${encodeURIComponent(id)}/errors`, {
    headers: headers(key),
    cache: "no-store",
  });
  if (!response.ok) throw errorFrom(response.status, await response.text(), null);
  return response.blob();
}
