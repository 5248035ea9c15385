// A batch that keeps failing is retried with backoff, then dead-lettered; the upload fails
// with the reason and nothing is dropped silently.
import assert from "node:assert/strict";
import { test } from "node:test";
import amqp from "amqplib";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { refusePoisonRows } from "./support/poison-rows.ts";
import { acceptedUpload, getJson, stackForTests, waitFor } from "./support/stack.ts";

const stack = stackForTests(
  { BATCH_SIZE: "2", MAX_ATTEMPTS: "3", RETRY_BASE_MS: "100" },
  {},
  ({ env }) => refusePoisonRows(env.sql),
);

test("a poison batch goes to the dead-letter queue after MAX_ATTEMPTS and the upload fails", async () => {
  const { id } = await acceptedUpload(stack.api.url, "id,name\n1,a\n2,b\n3,c\npoison,d\n5,e\n");

  const failed = await waitFor("the upload to fail", async () => {
    const { body } = await getJson(`${stack.api.url}/uploads/${id}`);
    return body.status === "failed" && body.batches.landed === 2 ? body : undefined;
  });
  assert.equal(failed.error.code, "BatchFailed");
  assert.match(failed.error.message, /batch 2 .*3 attempt/);
  assert.match(failed.error.message, /row 4 is poison/);

  const connection = await amqp.connect(stack.env.config.rabbitmqUrl);
  const channel = await connection.createChannel();
  const names = queueNames(stack.env.config.namespace);
  const dead = await channel.get(names.dead, { noAck: true });
  assert.ok(dead, "the batch waits in the dead-letter queue");
  assert.equal(dead.properties.headers?.["x-upload-id"], id);
  assert.equal(dead.properties.headers?.["x-seq"], 2);
  assert.equal(dead.properties.headers?.["x-attempt"], 3);
  assert.equal(JSON.parse(dead.content.toString()).rows[1].values[0], "poison");
  assert.equal((await channel.checkQueue(names.dead)).messageCount, 0);
  assert.equal((await channel.checkQueue(names.batches)).messageCount, 0);
  await connection.close();

  const { rows } = await stack.env.sql.query(
    "select row_number::int as row from upload_rows where upload_id = $1 order by 1",
    [id],
  );
  assert.deepEqual(
    rows.map((r) => r.row),
    [1, 2, 5],
  );
});
