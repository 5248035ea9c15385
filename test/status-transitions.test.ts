// Every change of an upload's status names the states it may come from: a final state
// (completed, rejected, failed, cancelled) never changes again, whoever writes late.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import {
  markCancelled,
  markFailed,
  markQueued,
  markRejected,
  markValidating,
  rejectAbandoned,
  touchUpload,
} from "../src/core/db/uploads.repository.ts";
import type { UploadStatus } from "../src/core/uploads/upload-status.ts";
import { type InProcess, startInProcess, type TestEnv, testEnv } from "./support/stack.ts";

let env: TestEnv;
let api: InProcess;
before(async () => {
  env = await testEnv();
  api = await startInProcess(env, { worker: false });
});
after(async () => {
  await api?.stop();
  await env?.cleanup();
});

const FINAL: UploadStatus[] = ["completed", "rejected", "failed", "cancelled"];
const validated = {
  bytes: 10,
  sha256: "0".repeat(64),
  encoding: "utf-8",
  delimiter: ",",
  columns: ["a"],
  rowsTotal: 1,
  rowErrors: 0,
  blankLines: 0,
  batchesTotal: 1,
};
const problem = { code: "Late", message: "a late writer" };

async function uploadIn(status: UploadStatus, idleSeconds = 0): Promise<string> {
  const id = randomUUID();
  await env.sql.query(
    `insert into uploads (id, tenant, status, last_progress_at)
     values ($1, 'default', $2, now() - make_interval(secs => $3))`,
    [id, status, idleSeconds],
  );
  return id;
}

async function statusOf(id: string): Promise<UploadStatus> {
  const { rows } = await env.sql.query("select status from uploads where id = $1", [id]);
  return rows[0].status;
}

/** Each late write, by whoever makes it; each must change nothing and say so. */
const lateWrites = [
  ["markQueued", (id: string) => markQueued(api.runtime.db, id, validated)],
  ["markRejected", (id: string) => markRejected(api.runtime.db, id, 10, problem)],
  ["markValidating", (id: string) => markValidating(api.runtime.db, id)],
  ["markFailed", (id: string) => markFailed(api.runtime.db, id, problem)],
  ["markCancelled", (id: string) => markCancelled(api.runtime.db, id)],
  ["touchUpload", (id: string) => touchUpload(api.runtime.db, id)],
] as const;

for (const final of FINAL) {
  test(`a ${final} upload stays ${final} whatever is written late`, async () => {
    const id = await uploadIn(final, 3_600);
    for (const [name, write] of lateWrites) {
      const changed = await write(id);
      assert.equal(await statusOf(id), final, `after ${name}`);
      assert.equal(changed, false, `${name} says it changed nothing`);
    }
    assert.deepEqual(await rejectAbandoned(api.runtime.db, 60), []);
    assert.equal(await statusOf(id), final);
  });
}

test("a queued upload is not received again; a processing one is not rejected either", async () => {
  for (const [status, writes] of [
    ["queued", [lateWrites[0], lateWrites[2]]],
    ["processing", lateWrites.slice(0, 3)],
  ] as const) {
    const id = await uploadIn(status, 3_600);
    for (const [name, write] of writes) {
      const changed = await write(id);
      assert.equal(await statusOf(id), status, `after ${name}`);
      assert.equal(changed, false, `${name} says it changed nothing`);
    }
    assert.deepEqual(await rejectAbandoned(api.runtime.db, 60), []);
  }
});
