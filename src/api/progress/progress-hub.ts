// One Redis subscriber connection per api process, fanning each upload's view changes out
// to every stream that follows that upload.
import type { Redis } from "ioredis";
import {
  DependencyLostError,
  DependencyTimeoutError,
  withinDeadline,
} from "../../core/dependencies.ts";
import type { Logger } from "../../core/logger.ts";
import type { UploadView } from "../../core/uploads/upload-view.ts";

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

export type HubPatience = Readonly<{
  /** How often an idle subscribed connection is asked to answer (PING). */
  pingMs: number;
  /** How long a subscription may take to be confirmed. */
  subscribeMs: number;
}>;

type Channel = { listeners: Set<ProgressListener>; subscribed: Promise<unknown> };

/**
 * `subscriber` must fail the commands a silent Redis owes (core/watched-redis.ts) and must not
 * resubscribe by itself: when its connection goes, every listener is told it is closed (a
 * stream ends, and its client reconnects to the current state), because what was published
 * meanwhile was not heard; a listener arriving before it is back is refused.
 */
export function createProgressHub(
  subscriber: Redis,
  channelOf: (uploadId: string) => string,
  log: Logger,
  patience: HubPatience,
): ProgressHub {
  const channels = new Map<string, Channel>();
  let closing = false;
  /** The connection went and has not been ready since. */
  let lost = false;

  const closeAll = () => {
    const all = [...channels.values()].flatMap((channel) => [...channel.listeners]);
    channels.clear();
    for (const listener of all) listener.closed();
  };
  subscriber.on("close", () => {
    if (closing) return;
    lost = true;
    if (channels.size > 0) log.warn("Redis subscriber connection lost; progress streams closed");
    closeAll();
  });
  subscriber.on("ready", () => {
    lost = false;
  });
  // A subscribed connection receives only what is published; a Redis gone silent would leave
  // it, and every stream on it, waiting for ever. A PING it owes is bounded like any command.
  const pinger = setInterval(() => {
    if (channels.size > 0 && subscriber.status === "ready") {
      subscriber.ping().catch(() => undefined);
    }
  }, patience.pingMs);
  pinger.unref();

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
      if (lost) throw new DependencyLostError("Redis", "the Redis subscriber connection is down");
      const name = channelOf(uploadId);
      let channel = channels.get(name);
      if (!channel) {
        const { subscribeMs } = patience;
        // Every later listener of the channel waits for this same confirmation.
        const subscribed = withinDeadline(
          subscriber.subscribe(name),
          subscribeMs,
          () =>
            new DependencyTimeoutError(
              "Redis",
              `Redis did not confirm a subscription within ${subscribeMs} ms`,
            ),
        );
        channel = { listeners: new Set(), subscribed };
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
      clearInterval(pinger);
      closeAll();
      subscriber.disconnect();
    },
  };
}
