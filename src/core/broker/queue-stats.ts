// Depth and consumers of the batch queue and its dead-letter queue, as RabbitMQ sees them now.
import type { Broker } from "./broker.ts";
import { queueNames } from "./queue-names.ts";

export type QueueStat = {
  queue: string;
  kind: "work" | "dead_letter";
  messages: number;
  consumers: number;
};

/**
 * Uses a channel of its own: a failed check closes the channel it ran on, and must not
 * take a consumer or publisher down with it. Fails at once while RabbitMQ is away rather
 * than waiting for the reconnect.
 */
export async function readQueueStats(broker: Broker, namespace: string): Promise<QueueStat[]> {
  const names = queueNames(namespace);
  return broker.withConnection(async (model) => {
    const channel = await model.createChannel();
    channel.on("error", () => undefined);
    try {
      const work = await channel.checkQueue(names.batches);
      const dead = await channel.checkQueue(names.dead);
      return [
        {
          queue: names.batches,
          kind: "work",
          messages: work.messageCount,
          consumers: work.consumerCount,
        },
        {
          queue: names.dead,
          kind: "dead_letter",
          messages: dead.messageCount,
          consumers: dead.consumerCount,
        },
      ];
    } finally {
      await channel.close().catch(() => undefined);
    }
  });
}
