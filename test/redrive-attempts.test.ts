// A re-driven batch starts again from its first attempt: one whose cause is not fixed yet is
// retried MAX_ATTEMPTS times again before it is dead-lettered, not dead-lettered at once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { deadLetterCount } from "./support/broker-queues.ts";
import { refusePoisonRows } from "./support/poison-rows.ts";
import {
  acceptedUpload,
  getJson,
  type InProcess,
  metricSample,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const MAX_ATTEMPTS = 3;

let env: TestEnv;
let stack: InProcess;
before(async () => {
  env = await testEnv({
    BATCH_SIZE: "2",
    MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    RETRY_BASE_MS: "100",
  });
  stack = await startInProcess(env);
  await refusePoisonRows(env.sql);
});
after(async () => {
  await stack?.stop();
  await env?.cleanup();
});

const deadLetters = () => deadLetterCount(env.config.rabbitmqUrl, env.config.namespace);

const consumed = async (outcome: string) =>
  (await metricSample(
    stack.workerUrl as string,
    "sluice_batches_consumed_total",
    `outcome="${outcome}"`,
  )) ?? 0;

/** Waits until the poison batch has been dead-lettered `times` times in all. */
const deadLetteredTimes = (times: number) =>
  waitFor(`the batch to be dead-lettered ${times} time(s)`, async () => {
    return (await consumed("dead_lettered")) === times && (await deadLetters()) === 1;
  });

test("a re-driven batch whose cause remains is retried MAX_ATTEMPTS times again, then dead-lettered", async () => {
  const { id } = await acceptedUpload(stack.url, "id\n1\n2\npoison\n4\n");
  await deadLetteredTimes(1);
  assert.equal(await consumed("retried"), MAX_ATTEMPTS - 1);

  // Re-driven with the poison still there.
  const answer = await getJson(`${stack.url}/uploads/${id}/redrive`, { method: "POST" });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.redriven.batches, 1);
  await deadLetteredTimes(2);
  assert.equal(
    await consumed("retried"),
    2 * (MAX_ATTEMPTS - 1),
    "the re-driven batch had its attempts again",
  );
  const { body } = await getJson(`${stack.url}/uploads/${id}`);
  assert.equal(body.status, "failed");
  assert.equal(body.batches.landed, 1);
});
