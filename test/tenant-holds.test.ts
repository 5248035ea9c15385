// MAX_ACTIVE_UPLOADS_PER_TENANT holds across api replicas from a request's first byte, before
// its upload is recorded; the places of a replica that crashed come free by themselves.
import assert from "node:assert/strict";
import { test } from "node:test";
import { freePort, startProgram } from "./support/program.ts";
import { BOUNDARY, rawRequest, uploadHead } from "./support/raw-http.ts";
import { callApi, metricSample, stackStarter, waitFor } from "./support/stack.ts";

const startStack = stackStarter();

const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

/** A form that has not reached its file part: a place held, nothing recorded yet. */
function formBeforeItsFile(url: string) {
  const request = rawRequest(
    url,
    uploadHead({ contentType: `multipart/form-data; boundary=${BOUNDARY}` }),
  );
  request.write(chunk(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nwait`));
  return request;
}

test("a tenant's bodies count against its limit on every replica from the first byte", async () => {
  const { env, api } = await startStack(
    {
      MAX_ACTIVE_UPLOADS_PER_TENANT: "2",
      UPLOAD_FORM_TIMEOUT_MS: "600000",
      UPLOAD_IDLE_TIMEOUT_MS: "600000",
    },
    { worker: false },
  );
  const port = await freePort();
  const otherUrl = `http://127.0.0.1:${port}`;
  const other = startProgram("src/api/main.ts", {
    ...env.env,
    PORT: String(port),
    LOG_LEVEL: "info",
  });
  const held: Array<ReturnType<typeof formBeforeItsFile>> = [];
  try {
    await other.line(
      "the other api to listen",
      (line) => line.includes('"api listening"'),
      120_000,
    );
    const here = formBeforeItsFile(api.url);
    const there = formBeforeItsFile(otherUrl);
    held.push(here, there);
    const running = api;
    for (const url of [running.url, otherUrl]) {
      await waitFor(
        "each api to be receiving a body",
        async () => (await metricSample(url, "sluice_uploads_receiving")) === 1,
      );
    }

    const refused = await callApi(api.url, "POST", "/uploads", "id,name\n1,a\n");
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.body.error.code, "TooManyActiveUploads");
    assert.equal(refused.body.error.details.limit, 2);
    assert.equal(refused.headers.get("retry-after"), "5");

    // The other replica dies with the body it was receiving: its place comes free once it
    // stops renewing it.
    other.child.kill("SIGKILL");
    await other.exit;
    const accepted = await waitFor(
      "the dead replica's place to come free",
      async () => {
        const answer = await callApi(running.url, "POST", "/uploads", "id,name\n1,a\n");
        if (answer.status !== 429) return answer;
        return undefined;
      },
      180_000,
    );
    assert.equal(accepted.status, 202, accepted.text);

    // A request that ends gives its place back at once: the one still waiting here goes.
    here.socket.destroy();
    await waitFor(
      "the place to be given back",
      async () => (await metricSample(running.url, "sluice_uploads_receiving")) === 0,
    );
    const next = await callApi(api.url, "POST", "/uploads", "id,name\n2,b\n");
    assert.equal(next.status, 202, next.text);
  } finally {
    for (const request of held) request.socket.destroy();
    await other.stop();
  }
});
