// A stored batch published again, as RabbitMQ redelivers a batch whose ack was lost.
import { GetObjectCommand } from "@aws-sdk/client-s3";
import amqp from "amqplib";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { batchKey } from "../../src/core/storage/s3-keys.ts";
import { encodeHeaders } from "../../src/core/uploads/batch-message.ts";
import { metricSample, type Stack, waitFor } from "./stack.ts";

/**
 * Publishes batch `seq` of upload `id` again, with the bytes its S3 object keeps (those it
 * was first published with), and waits for the stack's worker to find it landed: to count
 * one more batch consumed as a duplicate.
 */
export async function deliverAgain(stack: Stack, id: string, seq: number) {
  const { env } = stack;
  const object = await env.s3.send(
    new GetObjectCommand({ Bucket: env.config.s3.bucket, Key: batchKey(id, seq) }),
  );
  const body = Buffer.from(
    await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
  const batch = JSON.parse(body.toString()) as { rows: unknown[]; errors: unknown[] };
  const duplicates = () =>
    metricSample(
      stack.api.workerUrl as string,
      "sluice_batches_consumed_total",
      'outcome="duplicate"',
    );
  const before = (await duplicates()) ?? 0;
  const connection = await amqp.connect(env.config.rabbitmqUrl);
  try {
    const channel = await connection.createConfirmChannel();
    channel.sendToQueue(queueNames(env.config.namespace).batches, body, {
      persistent: true,
      headers: encodeHeaders({
        uploadId: id,
        seq,
        rows: batch.rows.length,
        rowErrors: batch.errors.length,
        attempt: 1,
      }),
    });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
  await waitFor(
    "the worker to find the batch landed",
    async () => (await duplicates()) === before + 1,
  );
}
