// Redis connections whose failures say which kind they are. ioredis reports a connection it
// dropped for silence (its socketTimeout) as MaxRetriesPerRequestError, the same as one the
// server reset, and a command refused for want of a connection by its message alone. Here
// the silence is watched by Sluice itself, so a command a silent Redis owes fails with a
// DependencyTimeoutError, and a command refused at once for want of a connection fails with
// a DependencyLostError, or a DependencyTimeoutError while the last one went for silence.
import type { Command, Redis } from "ioredis";
import { DependencyLostError, DependencyTimeoutError } from "../dependencies.ts";

/**
 * Watches `redis`: a connection that owes replies and receives nothing for `ms` is dropped,
 * failing what it owes with a DependencyTimeoutError naming `url` (ioredis then reconnects).
 */
export function watchRedis(redis: Redis, url: string, ms: number): Redis {
  let timer: NodeJS.Timeout | undefined;
  let watched: Redis["stream"] | undefined;
  /** Why the last connection was dropped, while no other has become ready since. */
  let silence: DependencyTimeoutError | undefined;
  redis.on("ready", () => {
    silence = undefined;
  });
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  /** Starts the wait on the connection in use, if it owes replies and none is under way. */
  const expect = () => {
    if (timer || redis.commandQueue.length === 0) return;
    const stream = redis.stream;
    if (stream !== watched) {
      watched = stream;
      // After ioredis's own data handler, which takes the answered commands off the queue.
      stream.on("data", () => {
        stop();
        expect();
      });
      stream.once("close", () => {
        if (watched === stream) stop();
      });
    }
    timer = setTimeout(() => {
      timer = undefined;
      const err = DependencyTimeoutError.silent("Redis", url, ms);
      silence = err;
      // Failed here, before the drop, so that ioredis does not fail them for the drop.
      for (let item = redis.commandQueue.shift(); item; item = redis.commandQueue.shift()) {
        item.command.reject(err);
      }
      stream.destroy(err);
    }, ms);
    timer.unref();
  };

  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command: Command, stream?: Parameters<Redis["sendCommand"]>[1]) => {
    // ioredis refuses a command at once, within this call, only when there is no connection
    // to send it on (enableOfflineQueue is off, or the client has ended), or when a subscribed
    // connection is sent a command it cannot run, which Sluice never does.
    const reject = command.reject;
    // While the connection that went was dropped for silence, that is why there is none.
    command.reject = (err: Error) =>
      reject(
        silence
          ? new DependencyTimeoutError("Redis", silence.message, { cause: err })
          : new DependencyLostError("Redis", "no connection to Redis", { cause: err }),
      );
    try {
      return send(command, stream);
    } finally {
      command.reject = reject;
      expect();
    }
  };
  return redis;
}
