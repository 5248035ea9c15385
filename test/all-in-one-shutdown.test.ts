// Every program in one process (`npm start`) stopped with SIGTERM while an upload is being
// published: it publishes what it accepted before it exits, as the api alone does.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import pg from "pg";
import { freePort, startProgram } from "./support/program.ts";
import { uploadWaitingForLanding } from "./support/publishing-window.ts";
import { spawnProgram, type TestEnv, testEnv, waitFor } from "./support/stack.ts";

let env: TestEnv | undefined;
after(async () => {
  await env?.cleanup();
});

const rows = (count: number) =>
  Array.from({ length: count }, (_, i) => `${i},name ${i}\n`).join("");

test("SIGTERM to src/main.ts mid-publish: every accepted batch is published before it exits", async () => {
  env = await testEnv({
    BATCH_SIZE: "10",
    // Publishing waits for landing: with landing held, the upload is mid-publish at SIGTERM.
    MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: "5",
    // A landing held by the lock below waits for it rather than timing out.
    DB_STATEMENT_TIMEOUT_MS: "600000",
    // Room for a loaded machine to publish it all; the exit is awaited, not timed.
    SHUTDOWN_TIMEOUT_MS: "600000",
  });
  const test = env;
  const [api, worker, controller] = [await freePort(), await freePort(), await freePort()];
  const base = `http://127.0.0.1:${api}`;
  const sluice = startProgram("src/main.ts", {
    ...env.env,
    LOG_LEVEL: "info",
    PORT: String(api),
    WORKER_PORT: String(worker),
    CONTROLLER_PORT: String(controller),
  });
  // Holds every landing: a worker claims each batch in upload_batches.
  const holder = new pg.Client({ connectionString: env.env.DATABASE_URL });
  let holding = false;
  let late: ReturnType<typeof spawnProgram> | undefined;
  try {
    await sluice.line("sluice to run", (line) => line.includes('"sluice running"'), 120_000);
    await holder.connect();
    await holder.query("begin");
    await holder.query("lock table upload_batches in exclusive mode");
    holding = true;

    const id = await uploadWaitingForLanding(test, base, `id,name\n${rows(500)}`, {
      batches: 50,
      window: 5,
    });

    sluice.child.kill("SIGTERM");
    await sluice.line("the shutdown to begin", (line) => line.includes('"shutting down"'));
    await holder.query("commit");
    holding = false;
    const exit = await sluice.exit;
    assert.equal(exit.code, 0, sluice.stdout.slice(-5).join("\n"));
    const { rows: published } = await env.sql.query(
      "select batches_published, batches_total from uploads where id = $1",
      [id],
    );
    assert.deepEqual(published[0], { batches_published: 50, batches_total: 50 });

    // What it published and left in the queue lands with the next worker, each row once.
    late = spawnProgram("worker", env.env);
    await waitFor("the upload to complete", async () => {
      const { rows } = await test.sql.query(
        "select status, rows_landed from uploads where id = $1",
        [id],
      );
      return rows[0].status === "completed" && Number(rows[0].rows_landed) === 500;
    });
    const { rows: landed } = await env.sql.query(
      "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
      [id],
    );
    assert.deepEqual(landed[0], { n: 500, distinct_rows: 500 });
  } finally {
    if (holding) await holder.query("rollback").catch(() => undefined);
    await holder.end().catch(() => undefined);
    await sluice.stop();
    await late?.stop();
  }
});
