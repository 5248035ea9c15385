// A re-driven batch starts again from its first attempt: one whose cause is not fixed yet is
// retried MAX_ATTEMPTS times again before it is dead-lettered, not dead-lettered at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deadLetterCount } from "./support/broker-queues.ts";
import { refusePoisonRows } from "./support/poison-rows.ts";
import { acceptedUpload, getJson, metricSample, stackForTests, waitFor } from "./support/stack.ts";

const MAX_ATTEMPTS = 3;

const stack = stackForTests(
  { BATCH_SIZE: "2", MAX_ATTEMPTS: String(MAX_ATTEMPTS), RETRY_BASE_MS: "100" },
  {},
  ({ env }) => refusePoisonRows(env.sql),
);

const deadLetters = () => deadLetterCount(stack.env.config.rabbitmqUrl, stack.env.config.namespace);

const consumed = async (outcome: string) =>
  (await metricSample(
    stack.api.workerUrl as string,
    "sluice_batches_consumed_total",
    `outcome="${outcome}"`,
  )) ?? 0;

/** Waits until the poison batch has been dead-lettered `times` times in all. */
const deadLetteredTimes = (times: number) =>
  waitFor(`the batch to be dead-lettered ${times} time(s)`, async () => {
    return (await consumed("dead_lettered")) === times && (await deadLetters()) === 1;
  });

test("a re-driven batch whose cause remains is retried MAX_ATTEMPTS times again, then dead-lettered", async () => {
  const { id } = await acceptedUpload(stack.api.url, "id\n1\n2\npoison\n4\n");
  await deadLetteredTimes(1);
  assert.equal(await consumed("retried"), MAX_ATTEMPTS - 1);

  // Re-driven with the poison still there.
  const answer = await getJson(`${stack.api.url}/uploads/${id}/redrive`, { method: "POST" });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.redriven.batches, 1);
  await deadLetteredTimes(2);
  assert.equal(
    await consumed("retried"),
    2 * (MAX_ATTEMPTS - 1),
    "the re-driven batch had its attempts again",
  );
  const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
  assert.equal(body.status, "failed");
  assert.equal(body.batches.landed, 1);
});
