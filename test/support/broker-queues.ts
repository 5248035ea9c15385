// The broker's own count of each queue's messages, read with rabbitmqctl on this machine.
import { execFileSync } from "node:child_process";
import amqp from "amqplib";
import { queueNames } from "../../src/core/broker/queue-names.ts";

export type QueueState = { name: string; ready: number; unacked: number };

/** Every queue of the namespace, as RabbitMQ holds it now (not its sampled statistics). */
export function queueStates(namespace: string): QueueState[] {
  return execFileSync(
    "rabbitmqctl",
    [
      "-q",
      "list_queues",
      "--no-table-headers",
      "name",
      "messages_ready",
      "messages_unacknowledged",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  )
    .split("\n")
    .map((line) => line.split("\t"))
    .filter(([name]) => name?.startsWith(`${namespace}.`))
    .map(([name, ready, unacked]) => ({
      name: name as string,
      ready: Number(ready),
      unacked: Number(unacked),
    }));
}

/** The messages in the namespace's dead-letter queue, as the broker counts them now. */
export async function deadLetterCount(rabbitmqUrl: string, namespace: string): Promise<number> {
  const connection = await amqp.connect(rabbitmqUrl);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(queueNames(namespace).dead)).messageCount;
  } finally {
    await connection.close();
  }
}
