// Publishing that resolves only when RabbitMQ has taken responsibility for the message.
import type { ConfirmChannel, Options } from "amqplib";
import { withinDeadline } from "../dependencies.ts";

/** How long to wait, and the error to fail with after that. */
export type Deadline = Readonly<{ ms: number; timeout: () => Error }>;

/**
 * Fails once `deadline` has passed without a confirm: a RabbitMQ that keeps the connection
 * open and says nothing would otherwise hold the publisher for ever. The message may still
 * be taken later; publishing it again is harmless, as the worker lands each batch once.
 */
export function publishConfirmed(
  channel: ConfirmChannel,
  queue: string,
  content: Buffer,
  options: Options.Publish,
  deadline: Deadline,
): Promise<void> {
  const confirmed = new Promise<void>((resolve, reject) => {
    channel.sendToQueue(queue, content, { persistent: true, ...options }, (err) =>
      err ? reject(err instanceof Error ? err : new Error("message was not confirmed")) : resolve(),
    );
  });
  return withinDeadline(confirmed, deadline.ms, deadline.timeout);
}
