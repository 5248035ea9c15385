// Publishing that resolves only when RabbitMQ has taken responsibility for the message.
import type { ConfirmChannel, Options } from "amqplib";

export function publishConfirmed(
  channel: ConfirmChannel,
  queue: string,
  content: Buffer,
  options: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, content, { persistent: true, ...options }, (err) =>
      err ? reject(err instanceof Error ? err : new Error("message was not confirmed")) : resolve(),
    );
  });
}
