// The OpenAPI description (src/api/http/openapi.json) is the api as it is: the same routes, and
// every answer, success or error, with a status, headers and body it describes.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { ensureBucket } from "../src/core/storage/s3.ts";
import { describedRoutes, mismatches, servedRoutes, spec } from "./support/openapi.ts";
import { ROOT, stackForTests } from "./support/stack.ts";
import { upsertById } from "./support/target-definitions.ts";

const KEY = "acme-6a1f0c9e2b7d";
const UNKNOWN = "0b5c2f9e-1d3a-4c8e-9f70-2a6b8d4e1c3f";

// No worker: uploads stay queued until cancelled, so every answer can be reached. A worker
// would make the bucket that a purge lists; here the test does.
const stack = stackForTests(
  { API_KEYS: `acme:${KEY}`, MAX_ACTIVE_UPLOADS_PER_TENANT: "1", MAX_UPLOAD_BYTES: "1000" },
  { worker: false },
  ({ env }) => ensureBucket(env.s3, env.config.s3.bucket),
);

test("the routes described are the routes served", () => {
  assert.deepEqual(describedRoutes(), servedRoutes(stack.api.api.app));
});

test("GET /openapi.json answers the description, without a key", async () => {
  const response = await fetch(`${stack.api.url}/openapi.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const file = JSON.parse(await readFile(`${ROOT}src/api/http/openapi.json`, "utf8"));
  assert.deepEqual(await response.json(), file);
  const pkg = JSON.parse(await readFile(`${ROOT}package.json`, "utf8"));
  assert.equal(spec.info.version, pkg.version);
});

type Call = {
  method?: string;
  path: string;
  body?: string | Uint8Array | FormData;
  type?: string;
  key?: string | null;
  headers?: Record<string, string>;
};

const problems: string[] = [];
const seen: string[] = [];

/** One request; what the description does not allow in its answer is kept in `problems`. */
async function call(expected: number, request: Call) {
  const { method = "GET", path, body, type = "text/csv", key = KEY, headers = {} } = request;
  const response = await fetch(`${stack.api.url}${path}`, {
    method,
    headers: {
      ...(body === undefined || body instanceof FormData ? {} : { "content-type": type }),
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...headers,
    },
    body,
  });
  const answer = {
    status: response.status,
    headers: response.headers,
    text: await response.text(),
  };
  assert.equal(answer.status, expected, `${method} ${path}: ${answer.text}`);
  problems.push(...(await mismatches(method, path, answer)));
  const template = path
    .split("?")[0]
    ?.replace(/[0-9a-f-]{36}/, "{id}")
    .replace(/^\/targets\/[^/]+$/, "/targets/{name}");
  seen.push(`${method} ${template} ${answer.status}`);
  return answer.status === 204 || !answer.text.startsWith("{") ? {} : JSON.parse(answer.text);
}

function form(fields: Record<string, string>, file?: string) {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  if (file !== undefined) data.append("file", new Blob([file], { type: "text/csv" }), "people.csv");
  return data;
}

test("every answer, success or error, is as the description says", async () => {
  await call(200, { path: "/healthz", key: null });
  await call(200, { path: "/readyz", key: null });
  await call(200, { path: "/metrics", key: null });
  await call(200, { path: "/openapi.json", key: null });

  await call(401, { path: "/uploads", key: null });
  await call(401, { path: "/uploads", key: "not-a-key" });
  await call(400, { method: "POST", path: "/uploads", body: "" });
  await call(400, { method: "POST", path: "/uploads?delimiter=x", body: "a\n1\n" });
  await call(400, {
    method: "POST",
    path: "/uploads",
    body: "a\n1\n",
    headers: { "idempotency-key": "k".repeat(256) },
  });
  await call(400, { method: "POST", path: "/uploads", body: form({ note: "no file" }) });
  await call(413, { method: "POST", path: "/uploads", body: "a\n".repeat(600) });
  const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  await call(415, { method: "POST", path: "/uploads", body: png });
  await call(415, { method: "POST", path: "/uploads", body: "{}", type: "application/json" });
  // Refused, and recorded so: an upload that is over.
  const refused = await call(422, { method: "POST", path: "/uploads", body: "id,name\n" });

  // A multipart upload with one bad row: queued (no worker), the tenant's one place taken.
  const first = await call(202, {
    method: "POST",
    path: "/uploads?delimiter=comma",
    body: form({ note: "before the file" }, "id,name\n1,ada\n2\n3,grace\n"),
  });
  await call(429, { method: "POST", path: "/uploads", body: "id\n1\n" });
  await call(200, { path: "/uploads" });
  await call(200, { path: `/uploads?limit=1&after=${first.id}` });
  await call(400, { path: "/uploads?limit=0" });
  await call(400, { path: "/uploads?after=nope" });
  await call(200, { path: `/uploads/${first.id}` });
  await call(404, { path: "/uploads/not-an-id" });
  await call(409, { method: "DELETE", path: `/uploads/${first.id}/data` });
  const redriven = await call(200, { method: "POST", path: `/uploads/${first.id}/redrive` });
  assert.deepEqual(redriven.redriven, { batches: 0 });
  await call(200, { method: "DELETE", path: `/uploads/${first.id}` });
  // Sent again, a cancel is answered as the first was; one of an upload that is over is not.
  await call(200, { method: "DELETE", path: `/uploads/${first.id}` });
  await call(409, { method: "DELETE", path: `/uploads/${refused.error.details.uploadId}` });
  await call(409, { method: "POST", path: `/uploads/${first.id}/redrive` });
  // The stream of a finished upload: its final event, then the end.
  await call(200, { path: `/uploads/${first.id}/events` });
  await call(204, { path: `/uploads/${first.id}/events`, headers: { "last-event-id": "0" } });
  await call(200, { path: `/uploads/${first.id}/errors` });
  await call(200, { method: "DELETE", path: `/uploads/${first.id}/data` });
  const byId: Array<[string, string]> = [
    ["GET", ""],
    ["DELETE", ""],
    ["DELETE", "/data"],
    ["POST", "/redrive"],
    ["GET", "/events"],
    ["GET", "/errors"],
  ];
  for (const [method, tail] of byId) {
    await call(404, { method, path: `/uploads/${UNKNOWN}${tail}` });
    await call(401, { method, path: `/uploads/${first.id}${tail}`, key: "not-a-key" });
  }
  await call(401, { method: "POST", path: "/uploads", body: "id\n1\n", key: null });

  const retry = { method: "POST", path: "/uploads", headers: { "idempotency-key": "k-1" } };
  const second = await call(202, { ...retry, body: "id,name\n1,ada\n" });
  assert.equal((await call(202, { ...retry, body: "id,name\n1,ada\n" })).id, second.id);
  await call(422, { ...retry, body: "id,name\n2,bob\n" });
  await call(200, { method: "DELETE", path: `/uploads/${second.id}` });

  const json = "application/json";
  const people = JSON.stringify(upsertById("people", [{ name: "name", type: "text" }]));
  await call(401, { path: "/targets", key: null });
  await call(200, { path: "/targets" });
  await call(201, { method: "PUT", path: "/targets/people", body: people, type: json });
  await call(200, { method: "PUT", path: "/targets/people", body: people, type: json });
  await call(200, { path: "/targets" });
  await call(200, { path: "/targets/people" });
  await call(413, {
    method: "PUT",
    path: "/targets/people",
    body: JSON.stringify({ pad: "x".repeat(300_000) }),
    type: json,
  });
  await call(415, { method: "PUT", path: "/targets/people", body: people });
  await call(422, { method: "PUT", path: "/targets/people", body: '{"table":"x"}', type: json });
  for (const method of ["GET", "PUT", "DELETE"]) {
    const body = method === "PUT" ? { body: people, type: json } : {};
    await call(400, { method, path: "/targets/Not.A.Name", ...body });
    await call(401, { method, path: "/targets/people", key: "not-a-key", ...body });
  }
  await call(404, { path: "/targets/unknown" });
  await call(404, { method: "DELETE", path: "/targets/unknown" });
  await call(204, { method: "DELETE", path: "/targets/people" });

  assert.deepEqual(problems, []);
  // Each status described for the uploads routes has been met, but those of a fault, a
  // limit of the process or a timing: 408, 500, 503, 507, the 409s of a race and of a
  // failed upload, and the progress streams' 429.
  const unmet = new Set([
    "POST /uploads 408",
    "POST /uploads 409",
    "POST /uploads 500",
    "POST /uploads 503",
    "POST /uploads 507",
    "GET /uploads/{id}/events 429",
    "GET /readyz 503",
  ]);
  const described = Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item as Record<string, any>).flatMap(([method, operation]) =>
      method === "parameters"
        ? []
        : Object.keys(operation.responses).map((s) => `${method.toUpperCase()} ${path} ${s}`),
    ),
  );
  const missed = described.filter(
    (d) => !seen.includes(d) && !unmet.has(d) && !/ (500|503)$/.test(d),
  );
  assert.deepEqual(missed, []);
});

test("a method a described path does not list gets 405 MethodNotAllowed, with Allow", async () => {
  const failures: string[] = [];
  for (const [template, item] of Object.entries(spec.paths as Record<string, object>)) {
    const path = template.replace("{id}", UNKNOWN).replace("{name}", "unknown");
    const listed = Object.keys(item)
      .filter((k) => k !== "parameters")
      .map((m) => m.toUpperCase());
    // A method none of the paths lists.
    const response = await fetch(`${stack.api.url}${path}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${KEY}` },
    });
    const body = await response.text();
    const allow = (response.headers.get("allow") ?? "").split(/,\s*/).filter(Boolean).sort();
    const expected = [...listed, ...(listed.includes("GET") ? ["HEAD"] : [])].sort();
    if (response.status !== 405 || JSON.parse(body).error.code !== "MethodNotAllowed") {
      failures.push(`PATCH ${template}: ${response.status} ${body}`);
    } else if (allow.join() !== expected.join()) {
      failures.push(`PATCH ${template}: Allow "${allow.join(", ")}", not ${expected.join(", ")}`);
    }
  }
  assert.deepEqual(failures, []);
});
