// One Redis subscriber connection per api process, fanning each upload's view changes out
// to every stream that follows that upload.
import type { Redis } from "ioredis";
import type { Logger } from "../core/logger.ts";
import type { UploadView } from "../core/upload-view.ts";

export type ProgressListener = Readonly<{
  view(view: UploadView): void;
  /** The hub is closing; the listener will hear nothing more. */
  closed(): void;
}>;

export type ProgressHub = Readonly<{
  /** Resolves once Redis confirms the subscription; returns the way to stop listening. */
  listen(uploadId: string, listener: ProgressListener): Promise<() => void>;
  listeners(): number;
  close(): Promise<void>;
}>;

type Channel = { listeners: Set<ProgressListener>; subscribed: Promise<unknown> };

export function createProgressHub(
  subscriber: Redis,
  channelOf: (uploadId: string) => string,
  log: Logger,
): ProgressHub {
  const channels = new Map<string, Channel>();
  let closing = false;

  subscriber.on("error", (err: Error) => log.warn({ err: err.message }, "Redis subscriber error"));
  subscriber.on("message", (name: string, message: string) => {
    const channel = channels.get(name);
    if (!channel) return;
    let view: UploadView;
    try {
      view = JSON.parse(message) as UploadView;
    } catch {
      return;
    }
    for (const listener of channel.listeners) listener.view(view);
  });

  return {
    async listen(uploadId, listener) {
      if (closing) throw new Error("the progress hub is closed");
      const name = channelOf(uploadId);
      let channel = channels.get(name);
      if (!channel) {
        // Every later listener of the channel waits for this same confirmation.
        channel = { listeners: new Set(), subscribed: subscriber.subscribe(name) };
        channels.set(name, channel);
      }
      channel.listeners.add(listener);
      const joined = channel;
      try {
        await joined.subscribed;
      } catch (err) {
        joined.listeners.delete(listener);
        if (channels.get(name) === joined) channels.delete(name);
        throw err;
      }
      return () => {
        if (!joined.listeners.delete(listener) || joined.listeners.size > 0) return;
        if (channels.get(name) !== joined) return;
        channels.delete(name);
        // Redis runs the commands of one connection in order, so a subscription made after
        // this unsubscribe still stands.
        subscriber.unsubscribe(name).catch(() => undefined);
      };
    },
    listeners: () => [...channels.values()].reduce((sum, c) => sum + c.listeners.size, 0),
    async close() {
      closing = true;
      const all = [...channels.values()].flatMap((channel) => [...channel.listeners]);
      channels.clear();
      for (const listener of all) listener.closed();
      subscriber.disconnect();
    },
  };
}
