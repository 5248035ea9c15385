// The broker's own count of each queue's messages, read with rabbitmqctl on this machine.
import { execFileSync } from "node:child_process";

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
