// API keys over HTTP: each upload belongs to the tenant whose key sent it, and to another
// tenant it does not exist.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import { before, describe, test } from "node:test";
import { apiKeys, stackForTests } from "./support/stack.ts";

const KEYS = { acme: "acme-7f3c9a", globex: "globex-91ab22" };

// No worker: uploads stay queued, so they can be cancelled.
const stack = stackForTests({ API_KEYS: apiKeys(KEYS) }, { worker: false });

type Request = { method: string; path: string; body?: string };

async function call(request: Request, authorization?: string) {
  const response = await fetch(`${stack.api.url}${request.path}`, {
    method: request.method,
    headers: {
      ...(request.body === undefined ? {} : { "content-type": "text/csv" }),
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: request.body,
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: response.headers.get("content-type")?.startsWith("application/json")
      ? JSON.parse(text)
      : undefined,
  };
}

const as = (tenant: keyof typeof KEYS) => `Bearer ${KEYS[tenant]}`;

async function upload(tenant: keyof typeof KEYS, csv = "id,name\n1,a\n2\n") {
  const response = await call({ method: "POST", path: "/uploads", body: csv }, as(tenant));
  assert.equal(response.status, 202, response.text);
  return response.body.id as string;
}

const someId = randomUUID();
const ROUTES: Request[] = [
  { method: "POST", path: "/uploads", body: "id\n1\n" },
  { method: "GET", path: "/uploads" },
  { method: "GET", path: `/uploads/${someId}` },
  { method: "DELETE", path: `/uploads/${someId}` },
  { method: "GET", path: `/uploads/${someId}/errors` },
];

describe("keys", () => {
  for (const route of ROUTES) {
    test(`${route.method} ${route.path.replace(someId, ":id")} without a key is 401 with WWW-Authenticate`, async () => {
      for (const authorization of [undefined, "", "Basic YWNtZTpwdw==", "Bearer", "Bearer  "]) {
        const response = await call(route, authorization);
        assert.equal(response.status, 401, `${authorization}: ${response.text}`);
        assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="sluice"');
        assert.equal(response.body.error.code, "Unauthorized");
      }
    });

    test(`${route.method} ${route.path.replace(someId, ":id")} with a wrong key is 401 invalid_token`, async () => {
      for (const key of [
        "nope",
        KEYS.acme.slice(0, -1),
        `${KEYS.acme}x`,
        KEYS.acme.toUpperCase(),
      ]) {
        const response = await call(route, `Bearer ${key}`);
        assert.equal(response.status, 401, `${key}: ${response.text}`);
        assert.equal(
          response.headers.get("www-authenticate"),
          'Bearer realm="sluice", error="invalid_token"',
        );
        assert.equal(response.body.error.code, "Unauthorized");
        assert.doesNotMatch(response.text, /acme|globex/, "the answer names no tenant");
      }
    });
  }

  test("an upload refused for its key stores nothing", async () => {
    const before = await stack.env.sql.query("select count(*)::int as n from uploads");
    const response = await call({ method: "POST", path: "/uploads", body: "id\n1\n" }, "Bearer x");
    assert.equal(response.status, 401);
    const afterwards = await stack.env.sql.query("select count(*)::int as n from uploads");
    assert.equal(afterwards.rows[0].n, before.rows[0].n);
    assert.deepEqual(await readdir(stack.env.config.uploadDir), []);
  });
});

describe("tenants", () => {
  let acmeUpload: string;
  before(async () => {
    acmeUpload = await upload("acme");
  });

  test("an upload is recorded under the tenant of the key that sent it", async () => {
    const { rows } = await stack.env.sql.query("select tenant from uploads where id = $1", [
      acmeUpload,
    ]);
    assert.equal(rows[0].tenant, "acme");
    const own = await call({ method: "GET", path: `/uploads/${acmeUpload}` }, as("acme"));
    assert.equal(own.status, 200);
    assert.equal(own.body.id, acmeUpload);
    assert.equal(own.body.tenant, undefined, "the answer does not carry the tenant");
  });

  for (const [method, suffix] of [
    ["GET", ""],
    ["GET", "/errors"],
    ["DELETE", ""],
  ] as const) {
    test(`${method} /uploads/:id${suffix} of another tenant's upload answers as an unknown id does`, async () => {
      const unknown = randomUUID();
      const theirs = await call({ method, path: `/uploads/${acmeUpload}${suffix}` }, as("globex"));
      const missing = await call({ method, path: `/uploads/${unknown}${suffix}` }, as("globex"));
      assert.equal(theirs.status, 404);
      assert.equal(theirs.status, missing.status);
      assert.deepEqual(theirs.body, JSON.parse(missing.text.replaceAll(unknown, acmeUpload)));
      assert.equal(theirs.headers.get("content-type"), missing.headers.get("content-type"));
      assert.deepEqual(Object.keys(theirs.body.error), ["code", "message"]);
      assert.equal(theirs.body.error.code, "NotFound");
    });
  }

  test("another tenant's DELETE cancels nothing; the owner's does", async () => {
    await call({ method: "DELETE", path: `/uploads/${acmeUpload}` }, as("globex"));
    const still = await call({ method: "GET", path: `/uploads/${acmeUpload}` }, as("acme"));
    assert.equal(still.body.status, "queued");

    const cancelled = await call({ method: "DELETE", path: `/uploads/${acmeUpload}` }, as("acme"));
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.status, "cancelled");
  });

  test("the owner gets the rejected rows", async () => {
    // Row errors land with the worker, which this api runs without.
    await stack.env.sql.query(
      "insert into row_errors (upload_id, row_number, line, code, message) values ($1, 2, 3, 'TooFewFields', 'row 2 has 1 field')",
      [acmeUpload],
    );
    const errors = await call({ method: "GET", path: `/uploads/${acmeUpload}/errors` }, as("acme"));
    assert.equal(errors.status, 200);
    assert.equal(errors.text, "row,line,code,message\n2,3,TooFewFields,row 2 has 1 field\n");
  });

  test("GET /uploads lists only the caller's uploads", async () => {
    const globex = [await upload("globex")];
    const acme = [acmeUpload, await upload("acme")];
    const list = async (tenant: keyof typeof KEYS, query = "") => {
      const response = await call({ method: "GET", path: `/uploads${query}` }, as(tenant));
      assert.equal(response.status, 200, response.text);
      return response.body;
    };
    const ids = (page: { items: { id: string }[] }) => page.items.map((u) => u.id).sort();
    assert.deepEqual(ids(await list("acme")), [...acme].sort());
    assert.deepEqual(ids(await list("globex")), globex);

    // Paging from another tenant's upload would tell which of the caller's uploads are older
    // than it; it is an unknown cursor instead.
    const fromTheirs = await list("globex", `?after=${acme[1]}`);
    const fromUnknown = await list("globex", `?after=${randomUUID()}`);
    assert.deepEqual(fromTheirs, fromUnknown);
    assert.deepEqual(fromTheirs.items, []);
  });
});
