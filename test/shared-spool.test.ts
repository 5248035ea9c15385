// Api replicas may share one UPLOAD_DIR: one starting never removes the files of a body
// another is receiving, and an api whose folder cannot be written to is not ready.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { freePort, startProgram } from "./support/program.ts";
import { rawRequest, uploadHead } from "./support/raw-http.ts";
import { callApi, type InProcess, stackStarter, type TestEnv, waitFor } from "./support/stack.ts";

const startStack = stackStarter();
let env: TestEnv | undefined;
let api: InProcess | undefined;

const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

test("an api starting on a shared folder leaves the partial file of a body another api receives", async () => {
  ({ env, api } = await startStack({ BATCH_SIZE: "2" }, { worker: false }));
  const test = env;
  const receiving = rawRequest(api.url, uploadHead({ contentType: "text/csv" }));
  receiving.write(chunk("id,name\n1,one\n2,two\n3,three\n"));
  await waitFor("the body to be arriving", async () => {
    const { rows } = await test.sql.query("select status from uploads");
    return rows[0]?.status === "validating";
  });
  // Left by requests that died with their api: an upload since ended, and one never recorded.
  const ended = randomUUID();
  await env.sql.query(
    "insert into uploads (id, tenant, status) values ($1, 'default', 'rejected')",
    [ended],
  );
  const leftovers = [`${ended}.batches.part`, `${randomUUID()}.batches.part`];
  for (const name of leftovers) await writeFile(join(env.config.uploadDir, name), "x");

  const port = await freePort();
  const other = startProgram("src/api/main.ts", {
    ...env.env,
    LOG_LEVEL: "info",
    PORT: String(port),
  });
  try {
    await other.line("the other api to listen", (line) => line.includes('"api listening"'));
    await waitFor("the other api to clear the partial files of ended uploads", async () => {
      const left = await readdir(test.config.uploadDir);
      return leftovers.every((name) => !left.includes(name));
    });
  } finally {
    await other.stop();
  }
  const kept = (await readdir(env.config.uploadDir)).filter((name) => name.endsWith(".part"));
  assert.equal(kept.length, 1, "the partial file of the body still arriving is kept");

  receiving.write(chunk("4,four\n5,five\n"));
  receiving.write("0\r\n\r\n");
  const answer = await receiving.answered;
  assert.equal(answer?.status, 202, answer?.text);
  assert.equal(answer?.body.rows, 5);
  assert.equal(answer?.body.batches.total, 3);
});

test("an api whose UPLOAD_DIR cannot be written to is not ready, and is again once it can", async () => {
  if (!env || !api) ({ env, api } = await startStack({}, { worker: false }));
  const running = api;
  const readiness = () => callApi(running.url, "GET", "/readyz");
  assert.equal((await readiness()).status, 200);
  // The volume gone from under the api.
  await rm(env.config.uploadDir, { recursive: true, force: true });
  const answer = await readiness();
  assert.equal(answer.status, 503, answer.text);
  assert.deepEqual(answer.body, { status: "not ready", unavailable: ["UPLOAD_DIR"] });
  await mkdir(env.config.uploadDir);
  assert.equal((await readiness()).status, 200);
});
