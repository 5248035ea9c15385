// The api's parsing thread dying of a fault of its own (not of any input) fails the uploads it
// held, each told so and recorded with its reason, and the next upload starts a new thread.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { test } from "node:test";
import { parseFaults } from "../src/core/faults.ts";
import { rawRequest, uploadHead } from "./support/raw-http.ts";
import { callApi, stackStarter, type TestEnv, waitFor } from "./support/stack.ts";

const startStack = stackStarter();

const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

async function receiving(test: TestEnv): Promise<string[]> {
  const { rows } = await test.sql.query(
    "select id from uploads where status = 'validating' order by created_at",
  );
  return rows.map((row) => row.id as string);
}

test("a parsing thread that dies fails the uploads it held, and the next upload gets a new one", async () => {
  // The thread dies as the second upload opens on it, the first one's body still arriving.
  const { env, api } = await startStack(
    { BATCH_SIZE: "10" },
    { worker: false, faults: parseFaults("parsing-thread:2", "test") },
  );
  const test = env;
  const first = rawRequest(api.url, uploadHead({ contentType: "text/csv" }));
  first.write(chunk("id,name\n1,one\n2,two\n"));
  const [firstId] = await waitFor("the first body to arrive", async () => {
    const ids = await receiving(test);
    return ids.length === 1 && ids;
  });
  const second = rawRequest(api.url, uploadHead({ contentType: "text/csv" }));
  second.write(chunk("id,name\n3,three\n"));

  const secondAnswer = await second.answered;
  // The first client sends nothing more: it is told all the same.
  await waitFor("the first upload to be ended", async () => {
    const { rows } = await test.sql.query("select status from uploads where id = $1", [firstId]);
    return rows[0].status !== "validating";
  });
  const firstAnswer = await first.answered;
  for (const answer of [firstAnswer, secondAnswer]) {
    assert.equal(answer?.status, 503, answer?.text);
    assert.equal(answer?.body.error.code, "Interrupted", answer?.text);
    assert.match(answer?.body.error.message, /parsing thread/);
    assert.equal(answer?.headers["retry-after"], "5");
  }
  const { rows } = await env.sql.query(
    "select status, error_code, error_message from uploads order by created_at",
  );
  assert.deepEqual(
    rows.map((row) => [row.status, row.error_code]),
    [
      ["rejected", "Interrupted"],
      ["rejected", "Interrupted"],
    ],
  );
  assert.match(rows[0].error_message, /parsing thread/);

  const next = await callApi(api.url, "POST", "/uploads", "id,name\n4,four\n5,five\n");
  assert.equal(next.status, 202, next.text);
  assert.equal(next.body.rows, 2);
  // The uploads that failed left no partial file behind.
  assert.deepEqual(
    (await readdir(env.config.uploadDir)).filter((name) => name.endsWith(".part")),
    [],
  );
});
