// An Idempotency-Key makes a retried POST /uploads answer with the upload its first attempt
// made, never a second load of the file; per tenant, bound to the file's bytes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sampleCsv } from "./support/csv-samples.ts";
import { apiKeys, getJson, stackForTests, waitFor } from "./support/stack.ts";

const KEYS = { acme: "acme-5d1e", globex: "globex-c04f" };

const stack = stackForTests({ API_KEYS: apiKeys(KEYS), BATCH_SIZE: "5" });

type Tenant = keyof typeof KEYS;

function post(
  tenant: Tenant,
  key: string | undefined,
  body: RequestInit["body"],
  init: RequestInit = {},
) {
  return fetch(`${stack.api.url}/uploads`, {
    method: "POST",
    headers: {
      "content-type": "text/csv",
      authorization: `Bearer ${KEYS[tenant]}`,
      ...(key === undefined ? {} : { "idempotency-key": key }),
    },
    body,
    ...init,
  });
}

async function answer(
  response: Response,
): Promise<{ status: number; headers: Headers; body: any }> {
  return { status: response.status, headers: response.headers, body: await response.json() };
}

async function uploadsOf(tenant: Tenant): Promise<Array<{ id: string; status: string }>> {
  const { rows } = await stack.env.sql.query(
    "select id, status from uploads where tenant = $1 order by created_at",
    [tenant],
  );
  return rows;
}

async function rowsLanded(id: string): Promise<number[]> {
  const { rows } = await stack.env.sql.query(
    "select row_number::int as row from upload_rows where upload_id = $1 order by 1",
    [id],
  );
  return rows.map((r) => r.row);
}

const completed = (tenant: Tenant, id: string) =>
  waitFor(`upload ${id} to complete`, async () => {
    const { body } = await getJson(`${stack.api.url}/uploads/${id}`, {
      headers: { authorization: `Bearer ${KEYS[tenant]}` },
    });
    return body.status === "completed" ? body : undefined;
  });

test("a retry with the same key and file answers with the first upload; the file loads once", async () => {
  const csv = sampleCsv(20).csv;
  const first = await answer(await post("acme", "retry-1", csv));
  assert.equal(first.status, 202);
  assert.equal(first.headers.get("idempotent-replayed"), null);
  await completed("acme", first.body.id);

  const again = await answer(await post("acme", "retry-1", csv));
  assert.equal(again.status, 202);
  assert.equal(again.body.id, first.body.id);
  assert.equal(again.headers.get("location"), `/uploads/${first.body.id}`);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal(again.body.status, "completed");

  // As multipart, the same file is the same upload too.
  const form = new FormData();
  form.append("file", new Blob([csv]), "people.csv");
  const multipart = await answer(
    await fetch(`${stack.api.url}/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.acme}`, "idempotency-key": "retry-1" },
      body: form,
    }),
  );
  assert.equal(multipart.status, 202);
  assert.equal(multipart.body.id, first.body.id);

  assert.deepEqual((await uploadsOf("acme")).filter((u) => u.id === first.body.id).length, 1);
  assert.deepEqual(
    await rowsLanded(first.body.id),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  assert.equal((await uploadsOf("acme")).length, 1);
});

test("the same key with another file is refused, and records nothing", async () => {
  const first = await answer(await post("acme", "retry-2", sampleCsv(10).csv));
  assert.equal(first.status, 202);
  const before = (await uploadsOf("acme")).length;
  const other = await answer(await post("acme", "retry-2", sampleCsv(11).csv));
  assert.equal(other.status, 422);
  assert.equal(other.body.error.code, "IdempotencyKeyReused");
  assert.equal(other.body.error.details.uploadId, first.body.id);
  assert.equal((await uploadsOf("acme")).length, before);
});

test("keys are per tenant: another tenant's same key is its own upload", async () => {
  const csv = sampleCsv(5).csv;
  const acme = await answer(await post("acme", "shared-key", csv));
  const globex = await answer(await post("globex", "shared-key", csv));
  assert.equal(acme.status, 202);
  assert.equal(globex.status, 202);
  assert.notEqual(globex.body.id, acme.body.id);
  assert.equal(globex.headers.get("idempotent-replayed"), null);
  assert.deepEqual(
    (await uploadsOf("globex")).map((u) => u.id),
    [globex.body.id],
  );
});

test("a retry while the first attempt's body still arrives gets 409, then the upload", async () => {
  const csv = sampleCsv(30).csv;
  const half = Math.floor(csv.length / 2);
  let sendRest: (() => void) | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(csv.slice(0, half)));
      sendRest = () => {
        controller.enqueue(new TextEncoder().encode(csv.slice(half)));
        controller.close();
      };
    },
  });
  const firstAttempt = post("acme", "slow-1", body, { duplex: "half" } as RequestInit);
  await waitFor(
    "the first attempt to be received",
    async () =>
      (
        await stack.env.sql.query(
          "select 1 from uploads where idempotency_key = 'slow-1' and status = 'validating'",
        )
      ).rowCount === 1,
  );

  const during = await answer(await post("acme", "slow-1", csv));
  assert.equal(during.status, 409);
  assert.equal(during.body.error.code, "IdempotencyKeyInUse");
  assert.equal(during.headers.get("retry-after"), "5");

  sendRest?.();
  const first = await answer(await firstAttempt);
  assert.equal(first.status, 202);
  const later = await answer(await post("acme", "slow-1", csv));
  assert.equal(later.status, 202);
  assert.equal(later.body.id, first.body.id);
  await completed("acme", first.body.id);
  assert.deepEqual(
    await rowsLanded(first.body.id),
    Array.from({ length: 30 }, (_, i) => i + 1),
  );
});

test("concurrent attempts with one key make one upload", async () => {
  const csv = sampleCsv(40).csv;
  const answers = await Promise.all(
    Array.from({ length: 6 }, async () => answer(await post("globex", "burst-1", csv))),
  );
  const accepted = answers.filter((a) => a.status === 202);
  assert.ok(accepted.length >= 1);
  for (const a of answers) {
    assert.ok(
      a.status === 202 || (a.status === 409 && a.body.error.code === "IdempotencyKeyInUse"),
      JSON.stringify(a.body),
    );
  }
  const ids = new Set(accepted.map((a) => a.body.id));
  assert.equal(ids.size, 1);
  const [id] = ids;
  const { rows } = await stack.env.sql.query(
    "select id from uploads where tenant = 'globex' and idempotency_key = 'burst-1'",
  );
  assert.deepEqual(
    rows.map((r) => r.id),
    [id],
  );
  await completed("globex", id as string);
  assert.equal((await rowsLanded(id as string)).length, 40);
});

test("a rejected first attempt frees its key: the retry with a good file is accepted", async () => {
  const rejected = await answer(await post("acme", "fix-1", "id,name\n"));
  assert.equal(rejected.status, 422);
  const retried = await answer(await post("acme", "fix-1", sampleCsv(3).csv));
  assert.equal(retried.status, 202);
  assert.notEqual(retried.body.id, rejected.body.error.details.uploadId);
  await completed("acme", retried.body.id);
});

test("a key that is not 1 to 255 printable characters is refused", async () => {
  for (const key of ["x".repeat(256), "tab\there", "caf\u00e9"]) {
    const refused = await answer(await post("acme", key, sampleCsv(2).csv));
    assert.equal(refused.status, 400, key);
    assert.equal(refused.body.error.code, "InvalidParameter");
  }
});

test("a key names its upload for 24 hours: a day later, the same key is a new upload", async () => {
  const first = await answer(await post("globex", "day-1", sampleCsv(4).csv));
  assert.equal(first.status, 202);
  await completed("globex", first.body.id);
  await stack.env.sql.query(
    "update uploads set created_at = now() - interval '25 hours' where id = $1",
    [first.body.id],
  );
  const later = await answer(await post("globex", "day-1", sampleCsv(6).csv));
  assert.equal(later.status, 202, JSON.stringify(later.body));
  assert.notEqual(later.body.id, first.body.id);
  assert.equal(later.headers.get("idempotent-replayed"), null);
  await completed("globex", later.body.id);
  assert.equal((await rowsLanded(later.body.id)).length, 6);
});

test("a first attempt whose body stopped arriving five minutes ago (its api died) frees its key", async () => {
  const stop = new AbortController();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("id,name\n1,a\n"));
    },
  });
  const firstAttempt = post("globex", "dead-1", body, {
    duplex: "half",
    signal: stop.signal,
  } as RequestInit).catch(() => undefined);
  const [{ id: firstId }] = await waitFor("the first attempt to be received", async () => {
    const { rows } = await stack.env.sql.query(
      "select id from uploads where idempotency_key = 'dead-1' and status = 'validating'",
    );
    return rows.length === 1 && rows;
  });
  // As its record would be had its api died with it six minutes ago.
  await stack.env.sql.query(
    "update uploads set last_progress_at = now() - interval '6 minutes' where id = $1",
    [firstId],
  );
  const retried = await answer(await post("globex", "dead-1", sampleCsv(3).csv));
  assert.equal(retried.status, 202, JSON.stringify(retried.body));
  assert.notEqual(retried.body.id, firstId);
  stop.abort();
  await firstAttempt;
  await completed("globex", retried.body.id);
  assert.equal((await rowsLanded(retried.body.id)).length, 3);
});
