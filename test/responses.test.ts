// Whatever the api answers, success or error, it carries the security headers; an internal
// error answers JSON that tells nothing about the server's insides.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { type InProcess, stackStarter } from "./support/stack.ts";

const KEY = "acme-0f1e2d3c4b5a";

const startStack = stackStarter();
let api: InProcess;
before(async () => {
  ({ api } = await startStack(
    {
      API_KEYS: `acme:${KEY}`,
      MAX_ACTIVE_UPLOADS_PER_TENANT: "1",
      MAX_UPLOAD_BYTES: "1000",
    },
    { worker: false },
  ));
});

type Request = {
  method?: string;
  path: string;
  body?: string;
  type?: string;
  key?: string | null;
};

async function send({ method = "GET", path, body, type = "text/csv", key = KEY }: Request) {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": type }),
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
    },
    body,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function assertSecurityHeaders(headers: Headers, what: string) {
  assert.equal(headers.get("x-content-type-options"), "nosniff", what);
  assert.equal(headers.get("x-frame-options"), "DENY", what);
  assert.match(headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/, what);
  assert.match(headers.get("content-security-policy") ?? "", /default-src 'none'/, what);
  assert.equal(headers.get("referrer-policy"), "no-referrer", what);
  assert.equal(headers.get("cache-control"), "no-store", what);
}

/** Nothing that tells how the server is built: no stack frames, file paths or modules. */
function assertNothingInternal(text: string) {
  assert.doesNotMatch(
    text,
    /\bat \S+ \(|\.ts\b|\.js\b|node_modules|node:|\/work\/|\/home\/|\/app\//,
  );
  assert.doesNotMatch(text, /stack|pool|kysely|pg-|ioredis|amqplib/i);
}

let uploadId: string;

test("every answer, success or error, carries the security headers", async () => {
  // In order: the tenant's one place for an upload in progress is taken last.
  const cases: Array<[Request, number]> = [
    [{ path: "/healthz" }, 200],
    [{ path: "/readyz" }, 200],
    [{ path: "/metrics" }, 200],
    [{ path: "/uploads" }, 200],
    [{ method: "POST", path: "/uploads", body: "", key: null }, 401],
    [{ method: "POST", path: "/uploads", body: "id\n1\n", key: "wrong" }, 401],
    [{ path: "/nowhere" }, 404],
    [{ path: "/uploads/0b5c2f9e-1d3a-4c8e-9f70-2a6b8d4e1c3f" }, 404],
    [{ method: "PUT", path: "/uploads" }, 405],
    [{ method: "POST", path: "/uploads", body: "" }, 400],
    [{ method: "POST", path: "/uploads?delimiter=x", body: "a\n1\n" }, 400],
    [{ method: "POST", path: "/uploads", body: "a\n".repeat(600) }, 413],
    [{ method: "POST", path: "/uploads", body: "a", type: "image/png" }, 415],
    [{ method: "POST", path: "/uploads", body: "a,b\n" }, 422],
    [{ method: "POST", path: "/uploads", body: "id,name\n1,a\n" }, 202],
    [{ method: "POST", path: "/uploads", body: "id,name\n1,a\n" }, 429],
  ];
  for (const [request, status] of cases) {
    const what = `${request.method ?? "GET"} ${request.path}`;
    const answer = await send(request);
    assert.equal(answer.status, status, `${what}: ${answer.text}`);
    assertSecurityHeaders(answer.headers, what);
    if (status >= 400) {
      assert.match(answer.headers.get("content-type") ?? "", /^application\/json/, what);
      assertNothingInternal(answer.text);
    }
    if (status === 202) uploadId = JSON.parse(answer.text).id;
  }
  for (const path of [`/uploads/${uploadId}`, `/uploads/${uploadId}/errors`]) {
    const answer = await send({ path });
    assert.equal(answer.status, 200, path);
    assertSecurityHeaders(answer.headers, path);
  }
});

test("with its database gone, the api answers JSON errors without stack, paths or internals", async () => {
  await api.runtime.db.destroy();
  const requests: Request[] = [
    { path: "/uploads" },
    { method: "POST", path: "/uploads", body: "id,name\n1,a\n" },
    { method: "DELETE", path: `/uploads/${uploadId}` },
    // The view is still in Redis: the failure comes once the rows are read.
    { path: `/uploads/${uploadId}/errors` },
  ];
  for (const request of requests) {
    const what = `${request.method ?? "GET"} ${request.path}`;
    const answer = await send(request);
    assert.equal(answer.status, 500, `${what}: ${answer.text}`);
    assert.match(answer.headers.get("content-type") ?? "", /^application\/json/, what);
    assert.deepEqual(JSON.parse(answer.text), {
      error: { code: "Internal", message: "internal error; the server log has the details" },
    });
    assertSecurityHeaders(answer.headers, what);
  }
  const healthz = await send({ path: "/healthz" });
  assert.equal(healthz.status, 200);
  assertSecurityHeaders(healthz.headers, "/healthz");
  const readyz = await send({ path: "/readyz?verbose" });
  assert.equal(readyz.status, 503);
  assertSecurityHeaders(readyz.headers, "/readyz?verbose");
});
