// The RabbitMQ connection (reconnecting by itself) and the queues Sluice declares.
import amqp, { type Channel, type ChannelModel, type RecoveringChannelModel } from "amqplib";
import type { Config } from "../config.ts";
import {
  DependencyLostError,
  DependencyTimeoutError,
  redactUrl,
  withinDeadline,
} from "../dependencies.ts";
import type { Logger } from "../logger.ts";
import type { Deadline } from "./confirm.ts";
import { queueNames } from "./queue-names.ts";

export type Topology = Readonly<{
  namespace: string;
  maxAttempts: number;
  retryBaseMs: number;
}>;

/** Delay before attempt `attempt + 1`: doubles each time, capped at five minutes. */
export function retryDelayMs(attempt: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** (attempt - 1), 5 * 60_000);
}

/**
 * Declares the work queue, one delay queue per retry attempt (a fixed TTL per queue keeps
 * expiry at the head, where RabbitMQ checks it) and the dead-letter queue.
 */
export async function assertTopology(channel: Channel, topology: Topology): Promise<void> {
  const names = queueNames(topology.namespace);
  await channel.assertQueue(names.batches, { durable: true });
  await channel.assertQueue(names.dead, { durable: true });
  for (let attempt = 1; attempt < topology.maxAttempts; attempt++) {
    await channel.assertQueue(names.retry(attempt), {
      durable: true,
      arguments: {
        "x-message-ttl": retryDelayMs(attempt, topology.retryBaseMs),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": names.batches,
      },
    });
  }
}

export type Broker = Readonly<{
  connection: RecoveringChannelModel;
  /** Resolves with the live connection, waiting for a reconnect when there is none. */
  connected(): Promise<ChannelModel>;
  isConnected(): boolean;
  /**
   * Runs `work` on the live connection, failing at once with a DependencyLostError when there
   * is none. When the connection closes under it, amqplib fails what was owed with errors that
   * say so in their message alone ("Channel ended, no reply will be forthcoming", a confirm's
   * "channel closed"): `work` then fails with a DependencyLostError naming RabbitMQ, amqplib's
   * error its cause.
   */
  withConnection<T>(work: (model: ChannelModel) => Promise<T>): Promise<T>;
  /** Resolves once RabbitMQ has answered a request on the current connection. */
  answers(): Promise<void>;
  /** How long a publish may wait for RabbitMQ's confirm. */
  confirmWithin: Deadline;
  /** How long a request (a channel to open, a message to get) may wait for the answer. */
  answerWithin: Deadline;
  close(): Promise<void>;
}>;

/**
 * The URL with a heartbeat, unless it sets one: a connection that stays open while RabbitMQ
 * says nothing is given up after two silent heartbeats, about `silenceMs`, and replaced.
 */
export function withHeartbeat(url: string, silenceMs: number): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has("heartbeat")) return url;
  parsed.searchParams.set("heartbeat", String(Math.max(1, Math.round(silenceMs / 2000))));
  return parsed.toString();
}

export async function connectBroker(
  url: string,
  topology: Topology,
  timeouts: Config["timeouts"],
  log: Logger,
): Promise<Broker> {
  let current: ChannelModel | undefined;
  /** Connections that have closed, told by their "close" event, before their work hears it. */
  const closed = new WeakSet<ChannelModel>();
  let waiters: Array<(model: ChannelModel) => void> = [];
  const { connectMs, commandMs } = timeouts;
  const connection = await amqp.connect(withHeartbeat(url, commandMs), {
    noDelay: true,
    // Until the connection is open (the AMQP handshake included); later, the heartbeat.
    timeout: connectMs,
    recovery: {
      // Listeners go on before the first attempt, so the first "connect" is seen too.
      waitForConnect: false,
      initialMaxRetries: 0,
      maxDelay: 5_000,
      setup: async (model: ChannelModel) => {
        const channel = await model.createChannel();
        await assertTopology(channel, topology);
        await channel.close();
      },
    },
  });
  connection.on("connect", (model: ChannelModel) => {
    // amqplib emits it as it fails the channels' requests, a tick before their callers hear.
    model.once("close", () => closed.add(model));
    current = model;
    for (const wake of waiters) wake(model);
    waiters = [];
  });
  connection.on("disconnect", (err: Error) => {
    current = undefined;
    log.warn({ err: err.message }, "RabbitMQ connection lost; reconnecting");
  });
  connection.on("reconnect-scheduled", ({ attempt, delay }: { attempt: number; delay: number }) =>
    log.info({ attempt, delay }, "RabbitMQ reconnect scheduled"),
  );
  connection.on("error", (err: Error) =>
    log.warn({ err: err.message }, "RabbitMQ connection error"),
  );
  try {
    await withinDeadline(connection.waitForConnect(), connectMs, () =>
      DependencyTimeoutError.silent("RabbitMQ", url, connectMs),
    );
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw err;
  }
  async function withConnection<T>(work: (model: ChannelModel) => Promise<T>): Promise<T> {
    const model = current;
    if (!model) throw new DependencyLostError("RabbitMQ", "no connection to RabbitMQ");
    try {
      return await work(model);
    } catch (err) {
      const named = err instanceof DependencyTimeoutError || err instanceof DependencyLostError;
      if (named || !closed.has(model)) throw err;
      throw new DependencyLostError("RabbitMQ", "the connection to RabbitMQ was lost", {
        cause: err,
      });
    }
  }
  return {
    connection,
    connected: () =>
      current ? Promise.resolve(current) : new Promise((resolve) => waiters.push(resolve)),
    isConnected: () => current !== undefined,
    withConnection,
    answers: () =>
      withConnection(async (model) => {
        const channel = await model.createChannel();
        channel.on("error", () => undefined);
        await channel.close();
      }),
    confirmWithin: {
      ms: commandMs,
      timeout: () =>
        new DependencyTimeoutError(
          "RabbitMQ",
          `RabbitMQ at ${redactUrl(url)} did not confirm a message within ${commandMs} ms`,
        ),
    },
    answerWithin: {
      ms: commandMs,
      timeout: () => DependencyTimeoutError.silent("RabbitMQ", url, commandMs),
    },
    close: () => connection.close(),
  };
}
