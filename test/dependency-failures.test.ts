// When PostgreSQL or Redis cannot be reached in the middle of a request, the api answers
// 503 ServiceUnavailable with Retry-After, not a 500, and recovers once they are back.
import assert from "node:assert/strict";
import { once } from "node:events";
import { readdir } from "node:fs/promises";
import { type IncomingMessage, request } from "node:http";
import { after, before, describe, test } from "node:test";
import { startProxiedApi } from "./support/proxied-api.ts";
import { apiForTests, callApi, waitFor } from "./support/stack.ts";

// Forty uploads of the one open tenant are in flight at once below: all may be received.
const stack = apiForTests({ MAX_ACTIVE_UPLOADS_PER_TENANT: "40" }, (env) =>
  startProxiedApi(env, ["PostgreSQL", "Redis"]),
);

const call = (method: string, path: string, body?: string) =>
  callApi(stack.api.url, method, path, body);

/** A refused connection does not say whose it was; a dropped one does, and is named. */
function assertUnavailable(answer: Awaited<ReturnType<typeof call>>, service: string) {
  assert.equal(answer.status, 503, answer.text);
  const { details, ...error } = answer.body.error;
  assert.deepEqual(error, {
    code: "ServiceUnavailable",
    message: details
      ? `${service} is unreachable; retry`
      : "a service Sluice needs is unreachable; retry",
  });
  if (details) assert.deepEqual(details, { service });
  assert.equal(answer.headers.get("retry-after"), "5");
  assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
}

const unfinished = "select id from uploads where status in ('received', 'validating')";
/** Uploads cut off with PostgreSQL out of reach stay unfinished (they stop counting later). */
let leftBehind: string[] = [];
const inProgress = async () =>
  (await stack.env.sql.query(unfinished)).rows.filter(({ id }) => !leftBehind.includes(id)).length;

test("uploads in flight when PostgreSQL's connections are cut get 503, and the api lives on", async () => {
  const inFlight = Array.from({ length: 40 }, (_, i) =>
    call("POST", "/uploads", `id,name\n${"1,a\n".repeat(i * 50 + 1)}`),
  );
  await waitFor("uploads to be arriving", async () => (await inProgress()) > 0);
  await stack.api.proxies.PostgreSQL.cut();
  const answers = await Promise.all(inFlight);
  await stack.api.proxies.PostgreSQL.restore();
  leftBehind = (await stack.env.sql.query(unfinished)).rows.map(({ id }) => id);
  for (const answer of answers) {
    assert.ok([202, 503].includes(answer.status), answer.text);
  }
  assert.ok(
    answers.some((a) => a.status === 503),
    "some were cut off",
  );
  assert.equal((await call("GET", "/healthz")).status, 200);
});

describe("PostgreSQL unreachable", () => {
  let uploadId: string;
  before(async () => {
    const accepted = await call("POST", "/uploads", "id,name\n1,a\n");
    assert.equal(accepted.status, 202);
    uploadId = accepted.body.id;
    await stack.api.proxies.PostgreSQL.cut();
  });
  after(async () => {
    await stack.api.proxies.PostgreSQL.restore();
  });

  test("listing uploads is 503 ServiceUnavailable", async () => {
    assertUnavailable(await call("GET", "/uploads"), "PostgreSQL");
  });

  test("a new upload is 503 ServiceUnavailable", async () => {
    assertUnavailable(await call("POST", "/uploads", "id,name\n1,a\n"), "PostgreSQL");
  });

  test("cancelling is 503 ServiceUnavailable", async () => {
    assertUnavailable(await call("DELETE", `/uploads/${uploadId}`), "PostgreSQL");
  });

  test("an upload's status is still served from Redis", async () => {
    const answer = await call("GET", `/uploads/${uploadId}`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.status, "queued");
  });

  test("the verbose readiness names it, while the probe's stays ready: the api answers 503 itself", async () => {
    const verbose = await call("GET", "/readyz?verbose");
    assert.equal(verbose.status, 503, verbose.text);
    assert.deepEqual(verbose.body, { status: "not ready", unavailable: ["PostgreSQL"] });
    // Every replica sees the same blip: failing the probe would take them all out of the
    // Service, and clients would get no answer instead of 503 with Retry-After.
    const probe = await call("GET", "/readyz");
    assert.equal(probe.status, 200, probe.text);
    const upload = await call("POST", "/uploads", "id,name\n1,a\n");
    assertUnavailable(upload, "PostgreSQL");
    assert.ok(Number(upload.headers.get("retry-after")) > 0, "503 says when to retry");
  });
});

describe("Redis unreachable", () => {
  before(async () => {
    await stack.api.proxies.Redis.cut();
  });
  after(async () => {
    await stack.api.proxies.Redis.restore();
  });

  test("a new upload is 503 ServiceUnavailable, and is not left counting as in progress", async () => {
    assertUnavailable(await call("POST", "/uploads", "id,name\n1,a\n"), "Redis");
    assert.equal(await inProgress(), 0);
  });

  test("an upload whose body was stored as Redis went away is 503, recorded as rejected, and leaves no file", async () => {
    await stack.api.proxies.Redis.restore();
    await waitFor(
      "Redis to be back",
      async () => (await call("GET", "/readyz?verbose")).status === 200,
    );
    const upload = request(`${stack.api.url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
    });
    const answered = once(upload, "response");
    upload.write("id,name\n");
    await waitFor("the body to be arriving", async () => (await inProgress()) === 1);
    await stack.api.proxies.Redis.cut();
    upload.end("1,a\n");
    const [response] = (await answered) as [IncomingMessage];
    let text = "";
    for await (const chunk of response) text += chunk;
    assert.equal(response.statusCode, 503, text);
    assert.equal(JSON.parse(text).error.code, "ServiceUnavailable");
    const { rows } = await stack.env.sql.query(
      "select id, status, error_code from uploads order by created_at desc limit 1",
    );
    assert.equal(rows[0].status, "rejected");
    assert.equal(rows[0].error_code, "Interrupted");
    const files = await readdir(stack.env.config.uploadDir);
    assert.ok(!files.some((name) => name.startsWith(rows[0].id)), files.join());
  });

  test("an upload's status is 503 ServiceUnavailable", async () => {
    const listed = await call("GET", "/uploads?limit=1");
    assert.equal(listed.status, 200, "PostgreSQL alone still lists");
    assertUnavailable(await call("GET", `/uploads/${listed.body.items[0].id}`), "Redis");
  });
});

test("once both are back, the api serves again", async () => {
  await waitFor(
    "the api to be ready",
    async () => (await call("GET", "/readyz?verbose")).status === 200,
  );
  const accepted = await call("POST", "/uploads", "id,name\n1,a\n");
  assert.equal(accepted.status, 202, accepted.text);
  const status = await call("GET", `/uploads/${accepted.body.id}`);
  assert.equal(status.status, 200);
  assert.equal((await call("GET", "/uploads")).status, 200);
});
