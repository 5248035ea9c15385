// Consumes batches with manual acks, routes failures to the delay and dead-letter queues,
// and starts again by itself after RabbitMQ comes back.
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import type { Broker } from "../core/broker/broker.ts";
import { publishConfirmed } from "../core/broker/confirm.ts";
import { queueNames } from "../core/broker/queue-names.ts";
import { markFailed } from "../core/db/uploads.repository.ts";
import { type BatchHeaders, decodeHeaders, encodeHeaders } from "../core/uploads/batch-message.ts";
import { afterFailure, type BatchDeps, type FailureStep, PermanentError } from "./batch-handler.ts";

export type ConsumerOptions = Readonly<{
  broker: Broker;
  namespace: string;
  prefetch: number;
  maxAttempts: number;
  /**
   * Lands one delivered batch; its outcome's kind is counted. A PermanentError dead-letters
   * the batch at once, any other failure sends it to be retried.
   */
  land(batch: BatchHeaders, body: Buffer): Promise<{ kind: string }>;
  /** What routing a failed batch needs: its dead-lettered upload is marked failed. */
  deps: Pick<BatchDeps, "db" | "status" | "metrics" | "faults" | "log">;
}>;

export type Consumer = Readonly<{
  /** Stops taking batches and waits for the ones in hand. */
  stop(): Promise<void>;
}>;

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").slice(0, 500);
}

export async function startConsumer(options: ConsumerOptions): Promise<Consumer> {
  const { broker, deps, maxAttempts } = options;
  const { metrics } = deps;
  const names = queueNames(options.namespace);
  const inFlight = new Set<Promise<void>>();
  let current: { channel: ConfirmChannel; tag: string } | undefined;
  let stopping = false;

  // An ack on a channel that has since closed cannot be sent; RabbitMQ redelivers the
  // batch, and landing it again is a no-op.
  const settle = (action: () => void) => {
    try {
      action();
    } catch (err) {
      deps.log.warn(
        { err: errorMessage(err) },
        "could not acknowledge; the batch will be redelivered",
      );
    }
  };

  async function fail(
    channel: ConfirmChannel,
    message: ConsumeMessage,
    err: unknown,
  ): Promise<FailureStep> {
    let batch: ReturnType<typeof decodeHeaders> | undefined;
    try {
      batch = decodeHeaders(message.properties.headers);
    } catch {
      // No headers to go by: nothing to retry.
    }
    const permanent = !batch || err instanceof PermanentError;
    const attempt = batch?.attempt ?? 1;
    const step = afterFailure(attempt, maxAttempts, permanent);
    const reason = errorMessage(err);
    const log = deps.log.child({ uploadId: batch?.uploadId, seq: batch?.seq, attempt });
    if (step.kind === "retry" && batch) {
      log.warn({ err: reason }, "batch failed; retrying after a delay");
      await publishConfirmed(
        channel,
        names.retry(step.queueAttempt),
        message.content,
        {
          ...message.properties,
          headers: { ...encodeHeaders({ ...batch, attempt: attempt + 1 }), "x-last-error": reason },
        },
        broker.confirmWithin,
      );
    } else {
      log.error({ err: reason }, "batch failed for good; dead-lettered");
      await publishConfirmed(
        channel,
        names.dead,
        message.content,
        {
          ...message.properties,
          headers: {
            ...message.properties.headers,
            "x-last-error": reason,
            "x-failed-at": new Date().toISOString(),
          },
        },
        broker.confirmWithin,
      );
      if (batch) {
        const problem = {
          code: "BatchFailed",
          message: `batch ${batch.seq} could not be landed after ${attempt} attempt(s): ${reason}`,
          details: { seq: batch.seq, attempts: attempt },
        };
        try {
          if (await markFailed(deps.db, batch.uploadId, problem)) {
            metrics.uploadsFinished.inc({ status: "failed" });
            await deps.status.refresh(batch.uploadId);
          }
        } catch (markErr) {
          log.error({ err: errorMessage(markErr) }, "could not mark the upload failed");
        }
      }
    }
    return step;
  }

  async function onMessage(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const batchDone = metrics.batchSeconds.startTimer();
    metrics.batchesInFlight.inc();
    try {
      const outcome = await options.land(
        decodeHeaders(message.properties.headers),
        message.content,
      );
      deps.faults.hit("after-commit");
      settle(() => channel.ack(message));
      metrics.batchesConsumed.inc({ outcome: outcome.kind });
    } catch (err) {
      try {
        const step = await fail(channel, message, err);
        settle(() => channel.ack(message));
        metrics.batchesConsumed.inc({
          outcome: step.kind === "retry" ? "retried" : "dead_lettered",
        });
      } catch (routeErr) {
        // Could not hand the batch on: give it back so it is not lost.
        deps.log.warn(
          { err: errorMessage(routeErr) },
          "could not route a failed batch; returning it",
        );
        settle(() => channel.nack(message, false, true));
      }
    } finally {
      metrics.batchesInFlight.dec();
      batchDone();
    }
  }

  async function attach(model: ChannelModel): Promise<void> {
    if (stopping) return;
    const channel = await model.createConfirmChannel();
    channel.on("error", (err: Error) =>
      deps.log.warn({ err: err.message }, "consumer channel error"),
    );
    channel.on("close", () => {
      if (current?.channel === channel) current = undefined;
    });
    await channel.prefetch(options.prefetch);
    const { consumerTag } = await channel.consume(
      names.batches,
      (message) => {
        if (!message) return;
        const work = onMessage(channel, message).finally(() => inFlight.delete(work));
        inFlight.add(work);
      },
      { noAck: false },
    );
    current = { channel, tag: consumerTag };
    deps.log.info({ queue: names.batches, prefetch: options.prefetch }, "consuming batches");
  }

  broker.connection.on("connect", (model: ChannelModel) => {
    attach(model).catch((err) =>
      deps.log.error({ err: errorMessage(err) }, "could not resume consuming"),
    );
  });
  await attach(await broker.connected());

  return {
    async stop() {
      stopping = true;
      const held = current;
      if (held) await held.channel.cancel(held.tag).catch(() => undefined);
      await Promise.allSettled([...inFlight]);
      if (held) await held.channel.close().catch(() => undefined);
    },
  };
}
