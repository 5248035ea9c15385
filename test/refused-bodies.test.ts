// Clients refused while their body still arrives, at its headers or part way through it, read
// the answer and its JSON error, whichever HTTP client they use: the api answers, then reads
// and discards what is still coming before it closes, so that no reset overtakes the answer.
// A client that keeps sending after its answer is still cut off, within the idle timeout.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import { freePort, type Program, spawnProgram, waitReady } from "./support/program.ts";
import { BOUNDARY, multipartBody, uploadHead } from "./support/raw-http.ts";
import {
  type InProcess,
  metricSample,
  requestFailed,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const KEY = "alice-key-7c41b9e0";
/** Far beyond what the sockets' buffers hold on either side, so most of it is still to come. */
const BODY_BYTES = 12 * 1024 * 1024;
/** Bodies refused part way through are within it; those refused at their headers declare more. */
const MAX_UPLOAD_BYTES = BODY_BYTES;

/** A CSV file of `bytes` whose first line is `header`. */
function csvOf(header: string, bytes = BODY_BYTES): Buffer {
  const head = Buffer.from(`${header}\n`);
  return Buffer.concat([head, Buffer.alloc(bytes - head.length, "1,2\n")]);
}

type Refusal = Readonly<{
  name: string;
  body: Buffer;
  contentType: string;
  key: string;
  status: number;
  code: string;
}>;

const REFUSALS: readonly Refusal[] = [
  {
    name: "refused at its headers (a key that is not known)",
    body: csvOf("a,b"),
    contentType: "text/csv",
    key: "not-a-key-of-anyone",
    status: 401,
    code: "Unauthorized",
  },
  {
    name: "refused at its headers (a length past MAX_UPLOAD_BYTES)",
    body: csvOf("a,b", MAX_UPLOAD_BYTES + 1),
    contentType: "text/csv",
    key: KEY,
    status: 413,
    code: "TooLarge",
  },
  {
    name: "refused mid-body (a header naming a column twice)",
    body: csvOf("a,a"),
    contentType: "text/csv",
    key: KEY,
    status: 422,
    code: "InvalidHeader",
  },
  {
    name: "refused at its headers (a form's length past MAX_UPLOAD_BYTES)",
    body: multipartBody(csvOf("a,b").toString("latin1")),
    contentType: `multipart/form-data; boundary=${BOUNDARY}`,
    key: KEY,
    status: 413,
    code: "TooLarge",
  },
];

type Answer = { status: number; body: any };

let env: TestEnv;
let program: Program;
let url: string;
let dir: string;
before(async () => {
  env = await testEnv({
    API_KEYS: `alice:${KEY}`,
    MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
  });
  // A process of its own, as clients meet it: a client in the api's own process takes turns
  // with it, which hides most resets.
  const port = await freePort();
  program = spawnProgram("api", { ...env.env, PORT: String(port) });
  url = `http://127.0.0.1:${port}`;
  await waitReady(program, url);
  dir = await mkdtemp(join(tmpdir(), "sluice-refused-"));
});
after(async () => {
  await program?.stop();
  await env?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Debian's curl, the body sent from a file as `--data-binary @file` sends it. */
async function curl(refusal: Refusal): Promise<Answer> {
  const file = join(dir, `${refusal.code}.csv`);
  await writeFile(file, refusal.body);
  const { code, stdout, stderr } = await new Promise<{
    code: number;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    execFile(
      "curl",
      [
        "-sS",
        "-H",
        `content-type: ${refusal.contentType}`,
        "-H",
        `authorization: Bearer ${refusal.key}`,
        "--data-binary",
        `@${file}`,
        "-w",
        "\n%{http_code}",
        `${url}/uploads`,
      ],
      (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr: stderr.trim() }),
    );
  });
  assert.equal(code, 0, `curl exited ${code}: ${stderr}`);
  const cut = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(cut + 1)), body: JSON.parse(stdout.slice(0, cut)) };
}

/** Node's fetch (undici). */
async function nodeFetch(refusal: Refusal): Promise<Answer> {
  const target = `${url}/uploads`;
  try {
    const response = await fetch(target, {
      method: "POST",
      headers: { "content-type": refusal.contentType, authorization: `Bearer ${refusal.key}` },
      body: refusal.body,
    });
    return { status: response.status, body: await response.json() };
  } catch (err) {
    throw requestFailed("POST", target, err);
  }
}

/** node:http, which writes the whole body whatever the answer: the answer must be read whole. */
function nodeHttp(refusal: Refusal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/uploads`,
      {
        method: "POST",
        headers: {
          "content-type": refusal.contentType,
          "content-length": String(refusal.body.length),
          authorization: `Bearer ${refusal.key}`,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    // An error once the answer is read whole changes nothing; before it, it is the failure.
    req.on("error", (err) => reject(requestFailed("POST", `${url}/uploads`, err)));
    req.end(refusal.body);
  });
}

const CLIENTS = { curl, fetch: nodeFetch, "node:http": nodeHttp } as const;

describe("a client refused while its body arrives reads its answer", () => {
  for (const [client, send] of Object.entries(CLIENTS)) {
    for (const refusal of REFUSALS) {
      test(`${client}: ${refusal.name} gets ${refusal.status} ${refusal.code}`, async () => {
        const answer = await send(refusal);
        assert.equal(answer.status, refusal.status, JSON.stringify(answer.body));
        assert.equal(answer.body.error.code, refusal.code);
      });
    }
  }

  // What decides between an answer and a reset, without depending on which client is quicker:
  // a client goes on sending after it has its answer and the end of the api's side.
  for (const refusal of REFUSALS) {
    test(`a client that sends on after its answer, ${refusal.name}, ends without a reset`, async () => {
      const socket = connect({
        port: Number(new URL(url).port),
        host: "127.0.0.1",
        allowHalfOpen: true,
      });
      let received = "";
      socket.on("data", (bytes: Buffer) => {
        received += bytes.toString("latin1");
      });
      let failure: Error | undefined;
      socket.on("error", (err) => {
        failure ??= err;
      });
      const closed = new Promise((resolve) => socket.once("close", resolve));
      const ended = new Promise((resolve) => socket.once("end", resolve));
      const head = uploadHead({
        key: refusal.key,
        contentType: refusal.contentType,
        length: refusal.body.length,
      });
      // Enough for any of the refusals to be decided, far from the whole body.
      const first = MAX_UPLOAD_BYTES + 64 * 1024;
      socket.write(`${head}\r\n\r\n`);
      socket.write(refusal.body.subarray(0, first));
      // The end of the api's side after its answer, or a reset in its place.
      await Promise.race([ended, closed]);
      if (!socket.destroyed) socket.end(refusal.body.subarray(first));
      await closed;
      assert.equal(failure, undefined, `the connection was reset: ${failure?.message}`);
      assert.match(received, new RegExp(`^HTTP/1\\.1 ${refusal.status} `));
      const body = JSON.parse(received.slice(received.indexOf("\r\n\r\n") + 4));
      assert.equal(body.error.code, refusal.code);
    });
  }

  test("the api gave back every place and holds no unfinished upload", async () => {
    await waitFor(
      "every place to be given back",
      async () => (await metricSample(url, "sluice_uploads_receiving")) === 0,
    );
    const { rows } = await env.sql.query(
      "select count(*)::int as n from uploads where status in ('received', 'validating')",
    );
    assert.equal(rows[0].n, 0);
  });
});

describe("a client that goes on sending after its answer is cut off", () => {
  let quick: InProcess;
  before(async () => {
    quick = await startInProcess(
      { ...env, config: loadConfig({ ...env.env, UPLOAD_IDLE_TIMEOUT_MS: "1000" }) },
      { worker: false },
    );
  });
  after(async () => quick?.stop());

  for (const pace of ["as fast as it can", "a byte at a time"] as const) {
    test(`a body without end, sent ${pace} after a refusal, is answered, then cut off`, async () => {
      // Half open: it goes on sending after the api's end of the answer, as a hostile client may.
      const socket = connect({
        port: Number(new URL(quick.url).port),
        host: "127.0.0.1",
        allowHalfOpen: true,
      });
      let received = "";
      socket.on("data", (bytes: Buffer) => {
        received += bytes.toString("latin1");
      });
      // Writes into a connection the api closed fail: that is the end this test waits for.
      socket.on("error", () => undefined);
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.write(
        `${uploadHead({ key: "not-a-key-of-anyone", contentType: "text/csv" })}\r\n\r\n`,
      );
      const chunk =
        pace === "a byte at a time" ? "1\r\nx\r\n" : `10000\r\n${"x".repeat(0x10000)}\r\n`;
      // Sends until the api closes the connection: only the api can end this test.
      while (!socket.destroyed) {
        if (!socket.write(chunk)) {
          await Promise.race([new Promise((r) => socket.once("drain", r)), closed]);
        } else if (pace === "a byte at a time") await new Promise((r) => setTimeout(r, 50));
      }
      await closed;
      assert.match(received, /^HTTP\/1\.1 401 /, "answered before the close");
      const body = received.slice(received.indexOf("\r\n\r\n") + 4);
      assert.equal(JSON.parse(body).error.code, "Unauthorized");
    });
  }
});
