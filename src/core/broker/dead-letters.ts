// Re-drive: moves dead-lettered batches back to the work queue with their attempts reset.
import type { ChannelModel, GetMessage } from "amqplib";
import { withinDeadline } from "../dependencies.ts";
import { decodeHeaders, encodeHeaders } from "../uploads/batch-message.ts";
import type { Broker } from "./broker.ts";
import { publishConfirmed } from "./confirm.ts";
import { queueNames } from "./queue-names.ts";

export type RedriveOptions = Readonly<{
  /** Only this upload's batches; all uploads' when unset. */
  uploadId?: string;
  /**
   * Called once per upload before its first batch goes back: true lets its batches go back,
   * false leaves them dead-lettered (an upload that no longer takes batches).
   */
  reopen(uploadId: string): Promise<boolean>;
}>;

export type RedriveResult = {
  /** Batches moved back to the work queue, per upload. */
  moved: Map<string, number>;
  /** Dead letters left where they were: another upload's, unreadable, or refused by reopen. */
  left: number;
};

/**
 * Takes every dead letter once. A batch goes back before its dead letter is acknowledged,
 * so a crash between the two leaves a copy in each queue, never none: the worker lands a
 * batch once however often it arrives. The letters left are held until the end, so the scan
 * meets each once, and then returned to the dead-letter queue; only their delivery tags are
 * kept meanwhile.
 */
export async function redriveDeadLetters(
  broker: Broker,
  namespace: string,
  options: RedriveOptions,
): Promise<RedriveResult> {
  // Without a connection the re-drive fails at once, as it does when the connection goes.
  return broker.withConnection((model) => redriveOn(model, broker, namespace, options));
}

async function redriveOn(
  model: ChannelModel,
  broker: Broker,
  namespace: string,
  options: RedriveOptions,
): Promise<RedriveResult> {
  const names = queueNames(namespace);
  // Each request is bounded: a RabbitMQ that keeps the connection open and says nothing
  // (with heartbeats off, or before they tell) would hold the re-drive for ever.
  const { ms, timeout } = broker.answerWithin;
  const channel = await withinDeadline(
    model.createConfirmChannel(),
    ms,
    timeout,
    (late) => void late.close().catch(() => undefined),
  );
  channel.on("error", () => undefined);
  const reopened = new Map<string, boolean>();
  const moved = new Map<string, number>();
  const left: Array<{ fields: { deliveryTag: number } }> = [];
  const leave = (message: GetMessage) => left.push({ fields: message.fields });
  try {
    for (;;) {
      // A message that comes late stays unacknowledged, and goes back when the channel closes.
      const message = await withinDeadline(channel.get(names.dead, { noAck: false }), ms, timeout);
      if (message === false) break;
      let batch: ReturnType<typeof decodeHeaders>;
      try {
        batch = decodeHeaders(message.properties.headers);
      } catch {
        leave(message);
        continue;
      }
      if (options.uploadId !== undefined && batch.uploadId !== options.uploadId) {
        leave(message);
        continue;
      }
      let open = reopened.get(batch.uploadId);
      if (open === undefined) {
        open = await options.reopen(batch.uploadId);
        reopened.set(batch.uploadId, open);
      }
      if (!open) {
        leave(message);
        continue;
      }
      const lastError = message.properties.headers?.["x-last-error"];
      await publishConfirmed(
        channel,
        names.batches,
        message.content,
        {
          ...message.properties,
          headers: {
            ...encodeHeaders({ ...batch, attempt: 1 }),
            ...(lastError === undefined ? {} : { "x-last-error": lastError }),
            "x-redriven-at": new Date().toISOString(),
          },
        },
        broker.confirmWithin,
      );
      channel.ack(message);
      moved.set(batch.uploadId, (moved.get(batch.uploadId) ?? 0) + 1);
    }
    for (const message of left) channel.nack(message as GetMessage, false, true);
    return { moved, left: left.length };
  } finally {
    // Closing returns whatever is still unacknowledged to the dead-letter queue (RabbitMQ does
    // the same when the connection goes), and is not waited on past the deadline either.
    await withinDeadline(channel.close(), ms, timeout).catch(() => undefined);
  }
}
