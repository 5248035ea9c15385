// Limits on uploads in progress: per tenant across every api process (429), and per api
// process on bodies being received (503, and 429 past a tenant's share, before the body is
// read). Under a burst the api answers every request, and never with a 500.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { type ClientRequest, type IncomingMessage, request } from "node:http";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import {
  type InProcess,
  metricSample,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const TENANTS = [
  "acme",
  "globex",
  "initech",
  "umbrella",
  "hooli",
  "stark",
  "slow",
  "crawl",
  "stall",
] as const;
type Tenant = (typeof TENANTS)[number];
const key = (tenant: Tenant) => `${tenant}-key-0123456789`;

let env: TestEnv;
/** Two api processes on one database, as two replicas run; `narrow` takes two bodies at once. */
let wide: InProcess;
let narrow: InProcess;
before(async () => {
  env = await testEnv({
    API_KEYS: TENANTS.map((t) => `${t}:${key(t)}`).join(","),
    MAX_ACTIVE_UPLOADS_PER_TENANT: "2",
    MAX_CONCURRENT_UPLOADS: "64",
  });
  // No worker: accepted uploads stay queued, so they keep counting.
  wide = await startInProcess(env, { worker: false });
  narrow = await startInProcess(
    { ...env, config: loadConfig({ ...env.env, MAX_CONCURRENT_UPLOADS: "2" }) },
    { worker: false },
  );
});
after(async () => {
  await narrow?.stop();
  await wide?.stop();
  await env?.cleanup();
});

type Answer = { status: number; headers: Headers; body: any };

async function post(api: InProcess, tenant: Tenant, csv = "id,name\n1,a\n"): Promise<Answer> {
  const response = await fetch(`${api.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv", authorization: `Bearer ${key(tenant)}` },
    body: csv,
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: JSON.parse(text),
  };
}

const uploadsOf = async (tenant: Tenant) =>
  Object.fromEntries(
    (
      await env.sql.query(
        "select status, count(*)::int as n from uploads where tenant = $1 group by status",
        [tenant],
      )
    ).rows.map((row) => [row.status, row.n]),
  );

/** An upload whose body is sent only as far as `first`, until `finish` is called. */
function openUpload(api: InProcess, tenant: Tenant, first: string) {
  const req: ClientRequest = request(`${api.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv", authorization: `Bearer ${key(tenant)}` },
  });
  const answered = once(req, "response").then(async ([res]) => {
    const response = res as IncomingMessage;
    let text = "";
    for await (const chunk of response) text += chunk;
    return { status: response.statusCode, headers: response.headers, body: JSON.parse(text) };
  });
  // A server that answers without reading the body closes the connection under it.
  req.on("error", () => undefined);
  req.write(first);
  return {
    answered,
    finish: (rest: string) => {
      req.end(rest);
      return answered;
    },
  };
}

describe("per api process: MAX_CONCURRENT_UPLOADS", () => {
  test("past the limit a new upload is 503 Busy with Retry-After, before its body is read", async () => {
    // Two tenants: one tenant may hold only half of the places.
    const slow = [openUpload(narrow, "slow", "id,name\n1,"), openUpload(narrow, "crawl", "id,")];
    await waitFor(
      "both bodies to be arriving",
      async () =>
        (await uploadsOf("slow")).validating === 1 && (await uploadsOf("crawl")).validating === 1,
    );

    const refused = openUpload(narrow, "acme", "id,name\n1,a\n");
    const answer = await refused.answered;
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error.code, "Busy");
    assert.equal(answer.headers["retry-after"], "5");
    assert.equal(answer.headers.connection, "close");
    assert.deepEqual(await uploadsOf("acme"), {}, "a refused upload is not recorded");

    // The other api process has room of its own.
    assert.equal((await post(wide, "acme")).status, 202);

    const finished = await Promise.all([slow[0]?.finish("a\n"), slow[1]?.finish("name\n1,b\n")]);
    assert.deepEqual(
      finished.map((f) => f?.status),
      [202, 202],
    );
    // Finished bodies give their places back.
    assert.equal((await post(narrow, "globex")).status, 202);
  });

  test("every way an upload ends gives its place back, a body stalled for UPLOAD_IDLE_TIMEOUT_MS included", async () => {
    // One place per api process: each upload below finds it free only if the one before gave
    // it back. A short idle timeout only where a stall is meant: on a loaded machine any body
    // may pause that long between two reads, and would be cut off as idle.
    const onePlace = (more: Record<string, string>) =>
      startInProcess(
        {
          ...env,
          config: loadConfig({
            ...env.env,
            MAX_CONCURRENT_UPLOADS: "1",
            MAX_UPLOAD_BYTES: "1000",
            ...more,
          }),
        },
        { worker: false },
      );
    const single = await onePlace({});
    try {
      const ends = [
        ["a body cut off as too large", `id\n${"1\n".repeat(200_000)}`, 413],
        ["a refused file", "a,a\n1,2\n", 422],
        ["an empty body", "", 400],
        ["an accepted file", "id\n1\n", 202],
        ["a refused media type", "id\n1\n", 415],
      ] as const;
      for (const [what, csv, status] of ends) {
        const answer =
          status === 415
            ? await fetch(`${single.url}/uploads`, {
                method: "POST",
                headers: { "content-type": "image/png", authorization: `Bearer ${key("stall")}` },
                body: csv,
              })
            : await post(single, "stall", csv);
        assert.equal(answer.status, status, what);
      }
    } finally {
      await single.stop();
    }

    const stalling = await onePlace({ UPLOAD_IDLE_TIMEOUT_MS: "300" });
    try {
      const stalled = openUpload(stalling, "stall", "id,name\n1,");
      // Cut off by the api, not answered; were it never cut, the test's own timeout fails it.
      const outcome = await stalled.answered.then(
        () => "answered",
        () => "cut off",
      );
      assert.equal(outcome, "cut off");
      await waitFor("the stalled upload to be recorded as rejected", async () => {
        const { rows } = await env.sql.query(
          "select count(*)::int as n from uploads where tenant = 'stall' and status in ('received', 'validating')",
        );
        return rows[0].n === 0;
      });
      // The rejection is recorded before the place is given back (the status view is
      // refreshed in between): the place is awaited on its own.
      await waitFor(
        "the stalled upload's place to be given back",
        async () => (await metricSample(stalling.url, "sluice_uploads_receiving")) === 0,
      );
      assert.equal((await post(stalling, "acme")).status, 202);
    } finally {
      await stalling.stop();
    }
  });
});

describe("per tenant: MAX_ACTIVE_UPLOADS_PER_TENANT", () => {
  test("past the limit a tenant's upload is 429 TooManyActiveUploads with Retry-After, and not recorded", async () => {
    const first = await post(wide, "umbrella");
    assert.equal(first.status, 202);
    assert.equal((await post(narrow, "umbrella")).status, 202, "the limit spans api processes");

    const refused = await post(wide, "umbrella");
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, "TooManyActiveUploads");
    assert.equal(refused.body.error.details.limit, 2);
    assert.equal(refused.headers.get("retry-after"), "30");
    assert.deepEqual(await uploadsOf("umbrella"), { queued: 2 });

    // Other tenants are not held back by this one.
    assert.equal((await post(wide, "hooli")).status, 202);

    // A cancelled upload is no longer in progress.
    const cancelled = await fetch(`${wide.url}/uploads/${first.body.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${key("umbrella")}` },
    });
    assert.equal(cancelled.status, 200);
    assert.equal((await post(wide, "umbrella")).status, 202);
  });

  test("rejected uploads do not count", async () => {
    for (const bad of ["", "a,b\n", 'a\n"open\n']) {
      assert.equal((await post(wide, "initech", bad)).status >= 400, true);
    }
    assert.equal((await post(wide, "initech")).status, 202);
    assert.equal((await post(wide, "initech")).status, 202);
    assert.equal((await post(wide, "initech")).status, 429);
  });

  test("an upload whose api died while receiving it stops counting once its body stops arriving", async () => {
    const insert = (minutesAgo: number) =>
      env.sql.query(
        `insert into uploads (id, tenant, status, last_progress_at)
         values ($1, 'hooli', 'validating', now() - make_interval(mins => $2))`,
        [randomUUID(), minutesAgo],
      );
    // hooli has one queued upload from the test above; one abandoned an hour ago, one
    // still arriving.
    await insert(60);
    await insert(0);
    assert.equal((await post(wide, "hooli")).status, 429);
    await env.sql.query(
      "update uploads set last_progress_at = now() - interval '1 hour' where tenant = 'hooli' and status = 'validating'",
    );
    assert.equal((await post(wide, "hooli")).status, 202);
  });

  test("uploads sent at once never exceed the limit, across api processes", async () => {
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) => post(i % 3 === 0 ? narrow : wide, "stark")),
    );
    assert.equal(answers.filter((a) => a.status === 202).length, 2);
    for (const answer of answers.filter((a) => a.status !== 202)) {
      assert.ok([429, 503].includes(answer.status), JSON.stringify(answer.body));
    }
    assert.deepEqual(await uploadsOf("stark"), { queued: 2 });
  });
});

test("a burst of uploads: every one answered with 202, 429 or 503 and a code, never a 500", async () => {
  const burst = await testEnv({
    API_KEYS: TENANTS.map((t) => `${t}:${key(t)}`).join(","),
    MAX_ACTIVE_UPLOADS_PER_TENANT: "5",
    MAX_CONCURRENT_UPLOADS: "4",
  });
  const api = await startInProcess(burst, { worker: false });
  try {
    const big = `id,text\n${Array.from({ length: 20_000 }, (_, i) => `${i},row ${i}`).join("\n")}\n`;
    const sends = Array.from({ length: 120 }, (_, i) => ({
      tenant: TENANTS[i % TENANTS.length] as Tenant,
      csv: i % 3 === 0 ? big : "id\n1\n",
    }));
    const accepted = new Map<Tenant, number>();
    let refusedAsBusy = 0;
    // Clients that retry on 503 (without waiting Retry-After out) all get a final answer.
    for (let round = 0; sends.length > 0; round++) {
      assert.ok(round < 200, "every upload got a final answer");
      const batch = sends.splice(0);
      const answers = await Promise.all(batch.map(({ tenant, csv }) => post(api, tenant, csv)));
      answers.forEach((answer, i) => {
        const sent = batch[i] as (typeof batch)[number];
        assert.ok([202, 429, 503].includes(answer.status), JSON.stringify(answer.body));
        if (answer.status !== 202) assert.match(answer.body.error.code, /^[A-Z][A-Za-z]+$/);
        if (answer.status === 202) accepted.set(sent.tenant, (accepted.get(sent.tenant) ?? 0) + 1);
        if (answer.status === 503 || answer.body.error?.code === "TooManyConcurrentUploads") {
          refusedAsBusy++;
          sends.push(sent);
        }
      });
    }
    assert.ok(refusedAsBusy > 0, "the burst met the per-process limit");
    assert.deepEqual(
      [...accepted.values()],
      TENANTS.map(() => 5),
      "each tenant got exactly its limit in",
    );

    // And the api is at ease afterwards.
    assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${api.url}/readyz`)).status, 200);
  } finally {
    await api.stop();
    await burst.cleanup();
  }
});
