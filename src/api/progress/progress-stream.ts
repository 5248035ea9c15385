// The body of GET /uploads/:id/events: the current state first, then every change, with
// comment lines as heartbeats, until the upload reaches a final status.
import { PassThrough, type Readable } from "node:stream";
import type { UploadView } from "../../core/uploads/upload-view.ts";
import {
  formatEvent,
  isFinal,
  isNews,
  type ProgressEvent,
  toProgressEvent,
} from "./progress-event.ts";
import type { ProgressHub } from "./progress-hub.ts";

export type ProgressStreamOptions = Readonly<{
  uploadId: string;
  hub: ProgressHub;
  /** The upload's view as it is now. */
  current: () => Promise<UploadView | undefined>;
  heartbeatMs: number;
  now?: () => number;
}>;

/** Destroying the returned stream (the client went away) stops listening. */
export async function openProgressStream(options: ProgressStreamOptions): Promise<Readable> {
  const now = options.now ?? Date.now;
  const out = new PassThrough();
  let last: ProgressEvent | undefined;
  let early: UploadView[] | undefined = [];
  let ended = false;
  let stopListening = () => {};
  let heartbeat: NodeJS.Timeout | undefined;

  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    stopListening();
    out.end();
  };
  const send = (view: UploadView) => {
    if (ended) return;
    const event = toProgressEvent(view, now());
    if (!isNews(event, last)) return;
    last = event;
    out.write(formatEvent(event));
    if (isFinal(event.status)) end();
  };
  out.once("close", end);

  // Listening starts before the current state is read, so no change falls between the two;
  // changes heard meanwhile wait until the current state has gone out.
  stopListening = await options.hub.listen(options.uploadId, {
    view: (view) => (early ? early.push(view) : send(view)),
    closed: end,
  });
  try {
    const view = await options.current();
    if (view) send(view);
  } catch (err) {
    end();
    throw err;
  }
  for (const view of early) send(view);
  early = undefined;
  if (!ended) {
    heartbeat = setInterval(() => out.write(": heartbeat\n\n"), options.heartbeatMs);
    heartbeat.unref();
  }
  return out;
}
