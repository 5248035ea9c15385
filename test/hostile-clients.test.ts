// Clients that break HTTP on purpose, on bare sockets against the real api: multipart bodies
// cut at every byte, requests abandoned at every stage, senders that stall or trickle, and
// senders that keep going for longer than any request timeout. None may crash the process,
// keep a place, a file or an unfinished upload record, or hold back another tenant.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import {
  BOUNDARY,
  multipartBody,
  type RawAnswer,
  rawRequest,
  uploadHead,
} from "./support/raw-http.ts";
import {
  type InProcess,
  metricSample,
  stackForTests,
  startInProcess,
  waitFor,
} from "./support/stack.ts";

const TENANTS = ["mallory", "trudy", "alice", "bob", "carol"] as const;
type Tenant = (typeof TENANTS)[number];
const key = (tenant: Tenant) => `${tenant}-key-5f0e1d2c`;
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
const ERROR_CODE = /^[A-Z][A-Za-z]+$/;

const stack = stackForTests(
  {
    API_KEYS: TENANTS.map((t) => `${t}:${key(t)}`).join(","),
    // Every abandoned request below would keep one of these four if it leaked.
    MAX_CONCURRENT_UPLOADS: "4",
    MAX_ACTIVE_UPLOADS_PER_TENANT: "1000",
    MAX_UPLOAD_BYTES: "2000000",
    UPLOAD_IDLE_TIMEOUT_MS: "2000",
    UPLOAD_FORM_TIMEOUT_MS: "2000",
  },
  // No worker: what was accepted stays queued and counted.
  { worker: false },
);

/** Upload bodies the api is receiving now, as its /metrics says. */
const receiving = (target: InProcess = stack.api) =>
  metricSample(target.url, "sluice_uploads_receiving");

async function partialFiles(): Promise<string[]> {
  return (await readdir(stack.env.config.uploadDir)).filter((name) => name.endsWith(".part"));
}

async function unfinishedRecords(): Promise<number> {
  const { rows } = await stack.env.sql.query(
    "select count(*)::int as n from uploads where status in ('received', 'validating')",
  );
  return rows[0].n;
}

/** Nothing held: no place, no partial file, no upload still being received. */
async function settled(target: InProcess = stack.api): Promise<void> {
  await waitFor(
    "every place, partial file and unfinished upload record to be given back",
    async () =>
      (await receiving(target)) === 0 &&
      (await partialFiles()).length === 0 &&
      (await unfinishedRecords()) === 0,
    15_000,
  );
}

async function post(tenant: Tenant, csv = "id,name\n1,a\n", target: InProcess = stack.api) {
  const response = await fetch(`${target.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv", authorization: `Bearer ${key(tenant)}` },
    body: csv,
  });
  return { status: response.status, body: (await response.json()) as any };
}

function assertClientError(answer: RawAnswer | undefined, what: string): RawAnswer {
  assert.ok(answer, `${what}: answered`);
  assert.ok(
    answer.status >= 400 && answer.status < 500,
    `${what}: ${answer.status} ${answer.text}`,
  );
  assert.match(answer.body?.error?.code ?? "", ERROR_CODE, `${what}: ${answer.text}`);
  assert.doesNotMatch(answer.text, /\bat \S+ \(|\.ts:\d|node_modules/, what);
  return answer;
}

describe("crash: malformed multipart", () => {
  test("a file part whose closing boundary never comes is a 400, and the api lives", async () => {
    const body = `--B\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\nid\n1\n`;
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({
        key: key("mallory"),
        contentType: "multipart/form-data; boundary=B",
        length: body.length,
      }),
    );
    exchange.write(body);
    const answer = assertClientError(await exchange.answered, "unterminated form");
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, "InvalidMultipart");
    await settled();
    assert.equal((await post("alice")).status, 202);
  });

  test("a multipart body ended at any byte is answered with a 4xx, never a crash", async () => {
    const full = multipartBody("id,name\n1,a\n2,b\n");
    // The form is whole once its closing delimiter is; the line break after it is optional.
    const whole = full.lastIndexOf(`--${BOUNDARY}--`) + BOUNDARY.length + 4;
    for (let cut = 0; cut <= full.length; cut++) {
      const part = full.subarray(0, cut);
      const exchange = rawRequest(
        stack.api.url,
        uploadHead({ key: key("mallory"), contentType: MULTIPART, length: part.length }),
      );
      exchange.write(part);
      const answer = await exchange.answered;
      if (cut >= whole) assert.equal(answer?.status, 202, `cut at byte ${cut}: ${answer?.text}`);
      else assertClientError(answer, `cut at byte ${cut}`);
    }
    await settled();
  });

  test("a file part not named `file` is refused at once", async () => {
    const head = [
      `--${BOUNDARY}\r\n`,
      'Content-Disposition: form-data; name="other"; filename="a.csv"\r\n\r\n',
      "id\n1\n",
      `\r\n--${BOUNDARY}\r\n`,
      'Content-Disposition: form-data; name="file"; filename="b.csv"\r\n\r\n',
      "id\n1\n",
    ].join("");
    // Announced far larger than what is sent: the answer must not wait for the rest.
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("mallory"), contentType: MULTIPART, length: 1_500_000 }),
    );
    exchange.write(head);
    const answer = assertClientError(await exchange.answered, "a file part not named file");
    assert.equal(answer.body.error.code, "InvalidMultipart");
    await settled();
  });

  test("a second `file` part is refused as it begins, before the rest of the body is read, and leaves nothing", async () => {
    const first = `id,name\n${"1,a\n".repeat(5_000)}`;
    const head = [
      `--${BOUNDARY}\r\n`,
      'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n',
      "Content-Type: text/csv\r\n\r\n",
      first,
      `\r\n--${BOUNDARY}\r\n`,
      'Content-Disposition: form-data; name="file"; filename="b.csv"\r\n',
      "Content-Type: text/csv\r\n\r\n",
      `id,name\n${"2,b\n".repeat(10_000)}`,
    ].join("");
    // Announced far larger than what is sent before the answer: an api that read on to the
    // end would wait for bytes that never come, and cut the body off as idle instead.
    const length = 1_900_000;
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("mallory"), contentType: MULTIPART, length }),
    );
    exchange.write(head);
    const answer = assertClientError(await exchange.answered, "a second file part");
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, "InvalidMultipart");
    const id = answer.body.error.details.uploadId;
    const { rows } = await stack.env.sql.query(
      "select status, error_code from uploads where id = $1",
      [id],
    );
    assert.deepEqual(rows, [{ status: "rejected", error_code: "InvalidMultipart" }]);
    await settled();
    assert.deepEqual(
      (await readdir(stack.env.config.uploadDir)).filter((name) => name.startsWith(id)),
      [],
      "no stored batches of the refused upload",
    );
  });
});

/** Points at which a client gives up on a multipart upload. */
type Stage = { name: string; bytes: Buffer; length: number; contentType?: string };

function stages(): Stage[] {
  const body = multipartBody(`id,name\n${"1,a\n".repeat(50_000)}`);
  const at = (marker: string, offset = 0) => body.indexOf(marker) + offset;
  const fileStart = at("Content-Type: text/csv\r\n\r\n", 26);
  return [
    { name: "after the request headers", bytes: body.subarray(0, 0), length: body.length },
    { name: "inside the first boundary", bytes: body.subarray(0, 5), length: body.length },
    {
      name: "inside a part header",
      bytes: body.subarray(0, at("form-data", 4)),
      length: body.length,
    },
    {
      name: "inside a text field",
      bytes: body.subarray(0, at("a note", 3)),
      length: body.length,
    },
    {
      name: "inside the file part's header",
      bytes: body.subarray(0, at('name="file"', 5)),
      length: body.length,
    },
    { name: "at the file's first byte", bytes: body.subarray(0, fileStart), length: body.length },
    {
      name: "inside the file",
      bytes: body.subarray(0, fileStart + 100_000),
      length: body.length,
    },
    {
      name: "before the closing boundary",
      bytes: body.subarray(0, body.length - 10),
      length: body.length,
    },
    {
      name: "inside a raw body",
      bytes: Buffer.from(`id,name\n${"1,a\n".repeat(1000)}`),
      length: 1_000_000,
      contentType: "text/csv",
    },
  ];
}

/** Trudy's upload, its request sent as far as `stage` and no further. */
function trudySendsUpTo(stage: Stage) {
  const exchange = rawRequest(
    stack.api.url,
    uploadHead({
      key: key("trudy"),
      contentType: stage.contentType ?? MULTIPART,
      length: stage.length,
    }),
  );
  exchange.write(stage.bytes);
  return exchange;
}

describe("leak: every way a request ends gives back what it held", () => {
  for (const how of ["closed", "reset"] as const) {
    test(`uploads ${how} by the client at every stage leave no place, file or open record`, async () => {
      // Twice as many abandoned requests as there are places.
      for (let round = 0; round < 2; round++) {
        for (const stage of stages()) {
          const exchange = trudySendsUpTo(stage);
          await waitFor(
            `the upload abandoned ${stage.name} to be received`,
            async () => (await receiving()) === 1,
            15_000,
          );
          if (how === "closed") exchange.socket.end();
          else exchange.socket.resetAndDestroy();
          await exchange.answered;
          await settled();
        }
      }
      assert.equal((await post("alice")).status, 202, "another tenant's upload is received");
      const { rows } = await stack.env.sql.query(
        "select status, error_code from uploads where tenant = 'trudy' and status <> 'queued'",
      );
      for (const row of rows) {
        assert.equal(row.status, "rejected");
        assert.match(row.error_code, ERROR_CODE);
      }
    });
  }

  test("uploads that stall at every stage are cut off and give back what they held", async () => {
    const all = stages();
    // Two at a time: a tenant's share of the four places.
    for (let at = 0; at < all.length; at += 2) {
      const exchanges = all.slice(at, at + 2).map(trudySendsUpTo);
      for (const answer of await Promise.all(exchanges.map((e) => e.answered))) {
        // Cut off: a 4xx when the answer could still be written, else the socket closed.
        if (answer) assertClientError(answer, "stalled");
      }
      await settled();
    }
    assert.equal((await post("bob")).status, 202);
  });

  test("a raw body stalled inside the file is cut off and recorded as rejected", async () => {
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("trudy"), contentType: "text/csv", length: 1_000_000 }),
    );
    exchange.write("id,name\n1,a\n2,");
    await exchange.answered;
    await settled();
    const { rows } = await stack.env.sql.query(
      "select status, error_code from uploads where tenant = 'trudy' order by created_at desc limit 1",
    );
    assert.equal(rows[0].status, "rejected");
    assert.equal(rows[0].error_code, "IdleTimeout");
  });
});

describe("slow: senders that never finish the form", () => {
  test("a text field trickled before the file part is cut off with 408", async () => {
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("mallory"), contentType: MULTIPART, length: 1_000_000 }),
    );
    exchange.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n`);
    // A byte at a time, never idle long enough to be cut off as idle.
    const trickle = setInterval(() => exchange.write("x"), 100);
    try {
      const answer = assertClientError(await exchange.answered, "trickled field");
      assert.equal(answer.status, 408);
      assert.equal(answer.body.error.code, "FormTimeout");
    } finally {
      clearInterval(trickle);
    }
    await settled();
  });

  test("more than the form's bytes before the file part is a 413", async () => {
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("mallory"), contentType: MULTIPART, length: 1_500_000 }),
    );
    exchange.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n`);
    exchange.write("x".repeat(1_000_000));
    const answer = assertClientError(await exchange.answered, "a huge field");
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error.code, "FormTooLarge");
    await settled();
  });

  test("one tenant's slow forms cannot take every place of the api", async () => {
    const slow = await startInProcess(
      {
        ...stack.env,
        config: loadConfig({
          ...stack.env.env,
          MAX_CONCURRENT_UPLOADS: "4",
          UPLOAD_IDLE_TIMEOUT_MS: "600000",
          UPLOAD_FORM_TIMEOUT_MS: "600000",
        }),
      },
      { worker: false },
    );
    try {
      const answers: Array<RawAnswer | undefined> = [];
      const held = Array.from({ length: 4 }, () => {
        const exchange = rawRequest(
          slow.url,
          uploadHead({ key: key("mallory"), contentType: MULTIPART, length: 1_000_000 }),
        );
        exchange.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nx`);
        exchange.answered.then((answer) => answers.push(answer));
        return exchange;
      });
      await waitFor(
        "each slow form to be received or turned away",
        async () => ((await receiving(slow)) ?? 0) + answers.length === held.length,
        15_000,
      );
      // The tenant's share is full: its further requests are turned away, not anyone else's.
      assert.equal((await post("carol", "id\n1\n", slow)).status, 202);
      assert.ok(answers.length > 0, "the tenant was turned away past its share");
      for (const answer of answers) {
        assert.equal(answer?.status, 429);
        assert.equal(answer?.body.error.code, "TooManyConcurrentUploads");
      }
      for (const exchange of held) exchange.socket.destroy();
      await waitFor("the held places to be given back", async () => (await receiving(slow)) === 0);
    } finally {
      await slow.stop();
    }
  });
});

describe("long: a body that keeps arriving is bounded by idleness and size, not wall time", () => {
  test("the server sets no request timeout on bodies, and keeps its headers timeout", () => {
    assert.equal(stack.api.server.requestTimeout, 0);
    assert.ok(stack.api.server.headersTimeout > 0 && stack.api.server.headersTimeout <= 60_000);
  });

  test("a client that has sent its whole body gets its answer, however long the api works on it", async () => {
    const quick = await startInProcess(
      { ...stack.env, config: loadConfig({ ...stack.env.env, UPLOAD_IDLE_TIMEOUT_MS: "300" }) },
      { worker: false },
    );
    // The api records an upload under its tenant's advisory lock: held here, the api waits.
    const lock = await stack.env.sql.connect();
    try {
      await lock.query("begin");
      await lock.query("select pg_advisory_xact_lock(hashtextextended($1, 0))", [
        "sluice.uploads.bob",
      ]);
      const answer = post("bob", "id\n1\n", quick);
      await waitFor("the upload to wait for its tenant's lock", async () => {
        const { rows } = await stack.env.sql.query(
          `select count(*)::int as n from pg_locks
           where locktype = 'advisory' and not granted
             and database = (select oid from pg_database where datname = current_database())`,
        );
        return rows[0].n > 0;
      });
      // The api stays busy for longer than its idle timeout after the last byte: until a body
      // begun on it after that byte, and stalled, has been cut off as idle.
      const witness = rawRequest(
        quick.url,
        uploadHead({ key: key("alice"), contentType: "text/csv", length: 1_000 }),
      );
      witness.write("id,name\n1,");
      // Cut off, its socket closed unanswered, then recorded.
      await witness.answered;
      const cutOff = await waitFor("the stalled body to be recorded as rejected", async () => {
        const { rows } = await stack.env.sql.query(
          "select status, error_code from uploads where tenant = 'alice' order by created_at desc limit 1",
        );
        return rows[0].status === "rejected" && rows[0];
      });
      assert.equal(cutOff.error_code, "IdleTimeout");
      await lock.query("commit");
      assert.equal((await answer).status, 202);
    } finally {
      lock.release();
      await quick.stop();
    }
  });

  test("a client that half-closes once its whole body is sent gets its 202, raw or multipart", async () => {
    const csv = "id,name\n1,a\n2,b\n";
    const ids: string[] = [];
    for (const { contentType, body } of [
      { contentType: "text/csv", body: Buffer.from(csv) },
      { contentType: MULTIPART, body: multipartBody(csv) },
    ]) {
      const exchange = rawRequest(
        stack.api.url,
        uploadHead({ key: key("carol"), contentType, length: body.length }),
      );
      exchange.write(body);
      // Done sending, as some clients and proxies say once a request is out; HTTP/1.1
      // still owes them the answer.
      exchange.socket.end();
      const answer = await exchange.answered;
      assert.equal(answer?.status, 202, `${contentType}: ${answer?.text ?? "no answer"}`);
      ids.push(answer.body.id);
    }
    const { rows } = await stack.env.sql.query(
      "select status, rows_total from uploads where id = any($1) order by created_at",
      [ids],
    );
    // No worker runs: each is recorded once, queued with its two rows.
    assert.deepEqual(rows, [
      { status: "queued", rows_total: 2 },
      { status: "queued", rows_total: 2 },
    ]);
    await settled();
  });

  test("a steady sender outlives many idle timeouts and is accepted", async () => {
    const chunks = 12;
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("carol"), contentType: "text/csv" }),
    );
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    exchange.write(chunk("id,name\n"));
    // A row every quarter of the idle timeout: three idle timeouts in all, never idle.
    const idle = stack.env.config.limits.uploadIdleTimeoutMs;
    for (let i = 0; i < chunks; i++) {
      await new Promise((resolve) => setTimeout(resolve, idle / 4));
      exchange.write(chunk(`${i},row ${i}\n`));
    }
    exchange.write("0\r\n\r\n");
    const answer = await exchange.answered;
    assert.equal(answer?.status, 202, answer?.text);
    assert.equal(answer?.body.rows, chunks);
  });
});

describe("limits and protocol", () => {
  test("a body sent to a route that reads none cannot hold the connection open", async () => {
    for (const path of ["/healthz", "/uploads", "/nowhere"]) {
      // Half open: the client goes on sending after the end of the answer, so that only the
      // api can close the connection.
      const socket = connect({
        port: Number(new URL(stack.api.url).port),
        host: "127.0.0.1",
        allowHalfOpen: true,
      });
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk.toString("latin1");
      });
      // Writes into the connection once the api has closed it fail (EPIPE, ECONNRESET): that
      // is the close this test waits for, not a failure (events.once would reject on it).
      socket.on("error", () => undefined);
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key("alice")}\r\n` +
          "Content-Length: 1000000\r\n\r\nid,name\n",
      );
      // The client goes on sending, slowly, for as long as the connection stays open.
      const trickle = setInterval(() => socket.write("x"), 100);
      try {
        await closed;
      } finally {
        clearInterval(trickle);
      }
      assert.match(received, /^HTTP\/1\.1 [0-9]{3} /, `${path}: answered before the close`);
    }
  });

  test("MAX_UPLOAD_BYTES counts the whole body, not only the file part", async () => {
    const body = Buffer.concat([
      multipartBody("id\n1\n").subarray(0, -4),
      Buffer.from(`\r\nContent-Disposition: form-data; name="extra"\r\n\r\n`),
      Buffer.alloc(2_500_000, "x"),
      Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
    ]);
    // Without a length, so that the bytes are counted as they come.
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("mallory"), contentType: MULTIPART }),
    );
    exchange.write(
      Buffer.concat([
        Buffer.from(`${body.length.toString(16)}\r\n`),
        body,
        Buffer.from("\r\n0\r\n\r\n"),
      ]),
    );
    const answer = assertClientError(await exchange.answered, "a large trailing field");
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error.code, "TooLarge");
    await settled();
  });

  test("a UTF-8 file name arrives as sent", async () => {
    const body = multipartBody("id\n1\n", { filename: "données.csv" });
    const exchange = rawRequest(
      stack.api.url,
      uploadHead({ key: key("alice"), contentType: MULTIPART, length: body.length }),
    );
    exchange.write(body);
    const answer = await exchange.answered;
    assert.equal(answer?.status, 202, answer?.text);
    assert.equal(answer?.body.filename, "données.csv");
  });

  test("a Content-Encoding Sluice does not decode is 415, before the body is read", async () => {
    for (const encoding of ["gzip", "br", "deflate, gzip"]) {
      const response = await fetch(`${stack.api.url}/uploads`, {
        method: "POST",
        headers: {
          "content-type": "text/csv",
          "content-encoding": encoding,
          authorization: `Bearer ${key("alice")}`,
        },
        body: "id\n1\n",
      });
      assert.equal(response.status, 415, encoding);
      assert.equal(((await response.json()) as any).error.code, "UnsupportedEncoding");
    }
  });

  test("progress streams are bounded per tenant (429) and per process (503)", async () => {
    const small = await startInProcess(
      { ...stack.env, config: loadConfig({ ...stack.env.env, MAX_PROGRESS_STREAMS: "2" }) },
      { worker: false },
    );
    const opened: AbortController[] = [];
    try {
      const ids: Partial<Record<Tenant, string>> = {};
      for (const tenant of ["alice", "bob", "carol"] as const) {
        const { status, body } = await post(tenant, "id\n1\n", small);
        assert.equal(status, 202);
        ids[tenant] = body.id;
      }
      const events = async (tenant: Tenant) => {
        const controller = new AbortController();
        opened.push(controller);
        const response = await fetch(`${small.url}/uploads/${ids[tenant]}/events`, {
          headers: { authorization: `Bearer ${key(tenant)}` },
          signal: controller.signal,
        });
        return { response, close: () => controller.abort() };
      };
      const first = await events("alice");
      assert.equal(first.response.status, 200);
      const second = await events("alice");
      assert.equal(second.response.status, 429, "past the tenant's share");
      assert.equal(((await second.response.json()) as any).error.code, "TooManyProgressStreams");
      assert.equal((await events("bob")).response.status, 200);
      const third = await events("carol");
      assert.equal(third.response.status, 503, "past the process's bound");
      assert.equal(((await third.response.json()) as any).error.code, "Busy");
      first.close();
      await waitFor(
        "alice's stream to close",
        async () => (await metricSample(small.url, "sluice_progress_streams")) === 1,
      );
      assert.equal((await events("carol")).response.status, 200);
    } finally {
      for (const controller of opened) controller.abort();
      await small.stop();
    }
  });
});
