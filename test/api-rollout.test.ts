// An api stopped with SIGTERM, as a rollout stops it: it takes no new upload and says so,
// ends the bodies still arriving with a clear answer and record, and finishes publishing the
// uploads it accepted before it exits.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { freePort, startProgram } from "./support/program.ts";
import { uploadWaitingForLanding } from "./support/publishing-window.ts";
import { rawRequest, uploadHead } from "./support/raw-http.ts";
import { callApi, spawnProgram, type TestEnv, testEnv, waitFor } from "./support/stack.ts";

let env: TestEnv | undefined;
after(async () => {
  await env?.cleanup();
});

const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
const rows = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `${from + i},name ${from + i}\n`).join("");

test("SIGTERM: new uploads are refused, bodies arriving are ended, accepted uploads are published whole", async () => {
  env = await testEnv({
    BATCH_SIZE: "10",
    // Publishing waits for landing, and no worker runs yet: the upload is mid-publish at SIGTERM.
    MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: "5",
    // Room for a loaded machine to publish it all; the exit is awaited, not timed.
    SHUTDOWN_TIMEOUT_MS: "600000",
  });
  const test = env;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const api = startProgram("src/api/main.ts", {
    ...env.env,
    LOG_LEVEL: "info",
    PORT: String(port),
  });
  let worker: ReturnType<typeof spawnProgram> | undefined;
  try {
    await api.line("the api to listen", (line) => line.includes('"api listening"'), 120_000);
    const id = await uploadWaitingForLanding(test, base, `id,name\n${rows(0, 500)}`, {
      batches: 50,
      window: 5,
    });
    const arriving = rawRequest(base, uploadHead({ contentType: "text/csv" }));
    arriving.write(chunk(`id,name\n${rows(0, 20)}`));
    await waitFor("the second body to be arriving", async () => {
      const { rows } = await test.sql.query(
        "select count(*)::int as n from uploads where status = 'validating'",
      );
      return rows[0].n === 1;
    });

    api.child.kill("SIGTERM");
    const told = await arriving.answered;
    assert.equal(told?.status, 503, told?.text);
    assert.equal(told?.body.error.code, "ShuttingDown", told?.text);
    assert.equal(told?.headers["retry-after"], "5");
    const { rows: ended } = await env.sql.query(
      "select status, error_code, error_message from uploads where id = $1",
      [told?.body.error.details.uploadId],
    );
    assert.equal(ended[0].status, "rejected");
    assert.equal(ended[0].error_code, "ShuttingDown");

    const readiness = await callApi(base, "GET", "/readyz");
    assert.equal(readiness.status, 503, readiness.text);
    assert.equal(readiness.body.status, "stopping");
    const refused = await callApi(base, "POST", "/uploads", "id,name\n1,a\n");
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error.code, "ShuttingDown");
    assert.equal(refused.headers.get("retry-after"), "5");
    // Still the api's only upload besides the two above: nothing was recorded for it.
    const { rows: counted } = await env.sql.query("select count(*)::int as n from uploads");
    assert.equal(counted[0].n, 2);

    // Workers land what is published, which lets the stopping api publish the rest.
    worker = spawnProgram("worker", env.env);
    const exit = await api.exit;
    assert.equal(exit.code, 0, api.stdout.slice(-5).join("\n"));
    const { rows: published } = await env.sql.query(
      "select batches_published, batches_total from uploads where id = $1",
      [id],
    );
    assert.deepEqual(published[0], { batches_published: 50, batches_total: 50 });
    await waitFor("the upload to complete", async () => {
      const { rows } = await test.sql.query(
        "select status, rows_landed from uploads where id = $1",
        [id],
      );
      return rows[0].status === "completed" && Number(rows[0].rows_landed) === 500;
    });
  } finally {
    await api.stop();
    await worker?.stop();
  }
});
