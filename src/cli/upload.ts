// `sluice upload FILE`: sends the file as a multipart form (so its name is kept), counting the
// bytes as fetch takes them, then follows the upload's progress events until a final status.
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { isFinal, type ProgressEvent } from "../api/progress/progress-event.ts";
import type { UploadView } from "../core/uploads/upload-view.ts";
import { ApiError, type Client } from "./client.ts";
import { readSse } from "./sse.ts";

/** An upload as the api presents it. */
export type Upload = Omit<UploadView, "tenant"> & {
  links: { self: string; events: string; errors: string };
};

export type UploadOptions = Readonly<{
  encoding?: string;
  delimiter?: string;
  idempotencyKey?: string;
  /** The target whose table the rows land in. */
  target?: string;
}>;

export type UploadWatcher = Readonly<{
  /** Bytes of the file handed to the connection so far, of `total`. */
  sending(sent: number, total: number): void;
  /** The api answered 202: the file is stored and valid. */
  accepted(upload: Upload): void;
  progress(event: ProgressEvent): void;
}>;

/** Reconnections of the progress stream in a row, without an event between them. */
const MAX_RECONNECTS = 5;

/** Sends the file; resolves with the upload once it has reached a final status. */
export async function uploadFile(
  client: Client,
  file: string,
  options: UploadOptions,
  watcher: UploadWatcher,
): Promise<Upload> {
  const accepted = await send(client, file, options, watcher);
  watcher.accepted(accepted);
  if (isFinal(accepted.status)) return accepted;
  return follow(client, accepted.id, watcher);
}

async function send(
  client: Client,
  file: string,
  options: UploadOptions,
  watcher: UploadWatcher,
): Promise<Upload> {
  const { size } = await stat(file);
  const boundary = `sluice-${randomBytes(12).toString("hex")}`;
  // The HTML form encoding of a file name: quotes and line breaks percent-encoded.
  const name = basename(file).replace(/["\r\n]/g, (c) => encodeURIComponent(c));
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
      "Content-Type: text/csv\r\n\r\n",
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let sent = 0;
  watcher.sending(0, size);
  async function* body() {
    yield head;
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      sent += chunk.length;
      watcher.sending(sent, size);
      yield chunk;
    }
    yield tail;
  }
  const query = new URLSearchParams();
  if (options.encoding) query.set("encoding", options.encoding);
  if (options.delimiter) query.set("delimiter", options.delimiter);
  if (options.target) query.set("target", options.target);
  const search = query.size > 0 ? `?${query}` : "";
  const response = await client.request("POST", `/uploads${search}`, {
    headers: {
      "content-type": `multipart/form-data; boundary=${boundary}`,
      ...(options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {}),
    },
    body: ReadableStream.from(body()),
    duplex: "half",
  });
  return (await response.json()) as Upload;
}

/**
 * Reads the upload's progress events, reconnecting (with the last event's id) when the
 * stream ends early, as after an api restart; then reads the upload as it ended.
 */
async function follow(client: Client, id: string, watcher: UploadWatcher): Promise<Upload> {
  let lastEventId: string | undefined;
  for (let reconnects = 0; ; reconnects++) {
    try {
      const response = await client.request("GET", `/uploads/${id}/events`, {
        headers: {
          accept: "text/event-stream",
          ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
        },
      });
      // 204: the upload had already finished.
      if (response.status === 204 || response.body === null) break;
      for await (const message of readSse(response.body)) {
        if (message.event !== "progress") continue;
        reconnects = 0;
        lastEventId = message.id;
        const event = JSON.parse(message.data) as ProgressEvent;
        watcher.progress(event);
        if (isFinal(event.status)) return client.json<Upload>("GET", `/uploads/${id}`);
      }
    } catch (err) {
      const retriable =
        !(err instanceof ApiError) || [0, 429, 503].includes(err.status) || err.status >= 500;
      if (!retriable || reconnects >= MAX_RECONNECTS) throw err;
    }
    if (reconnects >= MAX_RECONNECTS) break;
    await delay(1000 * (reconnects + 1));
  }
  return client.json<Upload>("GET", `/uploads/${id}`);
}
