// Every kind of bad input gets a clear answer over HTTP, and a rejected upload leaves nothing behind.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { before, describe, test } from "node:test";
import amqp from "amqplib";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { rawRequest, uploadHead } from "./support/raw-http.ts";
import { getJson, type InProcess, stackStarter, type TestEnv, waitFor } from "./support/stack.ts";

const startStack = stackStarter();
let env: TestEnv;
let api: InProcess;
before(async () => {
  // No worker: batches stay in the queue, so the test can count what was published.
  ({ env, api } = await startStack(
    {
      MAX_COLUMNS: "5",
      MAX_FIELD_BYTES: "64",
      MAX_UPLOAD_BYTES: "200000",
      BATCH_SIZE: "3",
      // Accepted uploads stay queued without a worker, and all belong to the one open tenant.
      MAX_ACTIVE_UPLOADS_PER_TENANT: "1000",
    },
    { worker: false },
  ));
});

async function post(body: string | Uint8Array, query = "", type = "text/csv") {
  return getJson(`${api.url}/uploads${query}`, {
    method: "POST",
    headers: { "content-type": type },
    body,
  });
}

/** Sends the body in chunks of the given size, as a slow client would. */
async function postChunked(bytes: Uint8Array, size: number) {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
      controller.close();
    },
  });
  return getJson(`${api.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: stream,
    duplex: "half",
  } as RequestInit);
}

async function published(): Promise<number> {
  const connection = await amqp.connect(env.config.rabbitmqUrl);
  const channel = await connection.createChannel();
  const { messageCount } = await channel.checkQueue(queueNames(env.config.namespace).batches);
  await connection.close();
  return messageCount;
}

async function expectRejected(
  response: {
    status: number;
    body: { error: Record<string, unknown> & { details?: { uploadId?: string } } };
  },
  status: number,
  code: string,
) {
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.error.code, code);
  assert.equal(typeof response.body.error.message, "string");
  const uploadId = response.body.error.details?.uploadId;
  assert.ok(uploadId, "the error names the upload it was recorded under");
  const recorded = await getJson(`${api.url}/uploads/${uploadId}`);
  assert.equal(recorded.body.status, "rejected");
  assert.equal(recorded.body.error.code, code);
  return response.body.error;
}

const utf16 = (text: string, bigEndian: boolean) => {
  const le = Buffer.from(`\ufeff${text}`, "utf16le");
  return bigEndian ? Buffer.from(le).swap16() : le;
};

describe("rejected uploads", () => {
  let queuedBefore = 0;
  before(async () => {
    queuedBefore = await published();
  });

  test("an empty body is 400 EmptyFile", async () => {
    await expectRejected(await post(""), 400, "EmptyFile");
  });

  test("a header without rows is 422 NoDataRows", async () => {
    await expectRejected(await post("a,b\n"), 422, "NoDataRows");
    await expectRejected(await post("a,b\r\n\r\n\n"), 422, "NoDataRows");
  });

  test("invalid UTF-8 is 422 InvalidEncoding at its byte offset", async () => {
    const bytes = Buffer.concat([
      Buffer.from("name,city\nJos"),
      Buffer.from([0xe9]),
      Buffer.from(",Paris\n"),
    ]);
    const error = await expectRejected(await post(bytes), 422, "InvalidEncoding");
    assert.equal(error.byte, 13);
  });

  for (const [name, magic] of [
    ["PNG", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])],
    ["ZIP", Buffer.from([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 8, 0])],
    ["gzip", Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3])],
    ["ELF", Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0])],
  ] as const) {
    test(`${name} data is 415 NotCsv whatever the Content-Type says`, async () => {
      const body = Buffer.concat([magic, Buffer.alloc(2000, 7)]);
      await expectRejected(await post(body), 415, "NotCsv");
    });
  }

  test("an unterminated quote is 422 UnterminatedQuote with its line", async () => {
    const error = await expectRejected(
      await post('a,b\n1,2\n3,"open\n4,5\n'),
      422,
      "UnterminatedQuote",
    );
    assert.equal(error.line, 3);
  });

  test("duplicate, empty and control-character header names are 422 InvalidHeader naming each", async () => {
    const error = await expectRejected(
      await post("id,name,id,,bad\u0001\n1,2,3,4,5\n"),
      422,
      "InvalidHeader",
    );
    assert.match(String(error.message), /id/);
    assert.match(JSON.stringify(error), /bad\\u0001/);
  });

  test("a header name holding a NUL is 422 InvalidHeader, and the upload is recorded as rejected", async () => {
    const error = await expectRejected(await post("id,na\u0000me\n1,2\n"), 422, "InvalidHeader");
    assert.match(JSON.stringify(error.details), /"names":\["na\\u0000me"\]/);
  });

  test("a header name quoted cut inside a surrogate pair still leaves the upload recorded as rejected", async () => {
    // The error quotes the first 40 UTF-16 units of the name: the last is half an emoji.
    await expectRejected(await post(`id,a${"😀".repeat(30)}\u0001\n1,2\n`), 422, "InvalidHeader");
  });

  test("more columns than MAX_COLUMNS is 422 TooManyColumns", async () => {
    await expectRejected(await post("a,b,c,d,e,f\n1,2,3,4,5,6\n"), 422, "TooManyColumns");
  });

  test("a body that grows over MAX_UPLOAD_BYTES is 413 TooLarge and its file is removed", async () => {
    // Sent without a length, so that only its bytes tell.
    const big = Buffer.from(`a,b\n${"1,2\n".repeat(60_000)}`);
    await expectRejected(await postChunked(big, 64 * 1024), 413, "TooLarge");
  });

  test("a body declared over MAX_UPLOAD_BYTES is 413 TooLarge before a byte of it is sent", async () => {
    const { rows: before } = await env.sql.query("select count(*)::int as n from uploads");
    const exchange = rawRequest(api.url, uploadHead({ contentType: "text/csv", length: 200_001 }));
    // A server waiting for the body would find it cut short here instead.
    exchange.socket.end();
    const answer = await exchange.answered;
    assert.equal(answer?.status, 413, JSON.stringify(answer?.body));
    assert.equal(answer?.body.error.code, "TooLarge");
    const { rows: after } = await env.sql.query("select count(*)::int as n from uploads");
    assert.equal(after[0].n, before[0].n);
  });

  test("a file part in base64 or quoted-printable is 415 UnsupportedEncoding, and records nothing", async () => {
    const { rows: before } = await env.sql.query("select count(*)::int as n from uploads");
    for (const encoding of ["base64", "quoted-printable"]) {
      const body = [
        "--B\r\n",
        'Content-Disposition: form-data; name="file"; filename="people.csv"\r\n',
        `Content-Transfer-Encoding: ${encoding}\r\n\r\n`,
        encoding === "base64" ? Buffer.from("id\n1\n").toString("base64") : "id=0A1=0A",
        "\r\n--B--\r\n",
      ].join("");
      const response = await post(body, "", "multipart/form-data; boundary=B");
      assert.equal(response.status, 415, `${encoding}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.error.code, "UnsupportedEncoding", encoding);
    }
    const { rows: after } = await env.sql.query("select count(*)::int as n from uploads");
    assert.equal(after[0].n, before[0].n);
  });

  test("published nothing and left no file behind", async () => {
    assert.equal(await published(), queuedBefore);
    assert.deepEqual(await readdir(env.config.uploadDir), []);
  });
});

describe("accepted uploads", () => {
  async function accepted(body: string | Uint8Array, query = "") {
    const response = await post(body, query);
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return response.body;
  }

  test("a UTF-8 BOM is stripped from the first header", async () => {
    const upload = await accepted("\ufeffid,name\n1,a\n");
    assert.deepEqual(upload.columns, ["id", "name"]);
  });

  test("UTF-16 LE and BE with a BOM are transcoded", async () => {
    for (const bigEndian of [false, true]) {
      const upload = await accepted(utf16("id,città\n1,Zürich\n2,東京\n", bigEndian));
      assert.deepEqual(upload.columns, ["id", "città"]);
      assert.equal(upload.rows, 2);
    }
  });

  test("legacy files are accepted with ?encoding=latin1 or windows-1252", async () => {
    const bytes = Buffer.concat([
      Buffer.from("name,price\nJos"),
      Buffer.from([0xe9]),
      Buffer.from(","),
      Buffer.from([0x80]),
      Buffer.from("5\n"),
    ]);
    assert.equal((await accepted(bytes, "?encoding=latin1")).rows, 1);
    assert.equal((await accepted(bytes, "?encoding=windows-1252")).rows, 1);
  });

  test("semicolon, tab and pipe delimiters are detected from the header, or given", async () => {
    assert.equal((await accepted("a;b;c\n1;2;3\n")).delimiter, ";");
    assert.equal((await accepted("a\tb\n1\t2\n")).delimiter, "\t");
    assert.equal((await accepted("a|b\n1|2\n")).delimiter, "|");
    const given = await accepted("a;b,c\n1;2,3\n", "?delimiter=semicolon");
    assert.deepEqual(given.columns, ["a", "b,c"]);
  });

  test("quoted newlines, mixed line endings, no final newline and blank lines: rows count records", async () => {
    const upload = await accepted('id,text\r\n1,"two\nlines"\n\n2,plain\r3,"x"\r\n\r\n4,last');
    assert.equal(upload.rows, 4);
    assert.equal(upload.blankLines, 2);
  });

  test("bad rows are recorded as row errors and the rest accepted", async () => {
    const body = `id,name\n1,ok\n2\n3,a,extra\n4,nul\u0000here\n5,${"x".repeat(65)}\n6,fine\n`;
    const upload = await accepted(body);
    assert.equal(upload.rows, 6);
    assert.equal(upload.rowErrors, 4);
  });

  test("the same bytes sent in chunks of any size give the same result", async () => {
    const bytes = Buffer.from(
      '\ufeffid,"na,me",city\r\n1,"a ""q""",São\n2,"multi\r\nline",東京\r\n\n3,x,y\n4,only-two\n',
    );
    const results = [];
    for (const size of [1, 2, 3, 7, 64, 65_536]) {
      const response = await postChunked(bytes, size);
      assert.equal(response.status, 202);
      const {
        id: _id,
        createdAt: _c,
        updatedAt: _u,
        queuedAt: _q,
        lastProgressAt: _l,
        links: _links,
        ...rest
      } = response.body;
      results.push(rest);
    }
    for (const result of results) assert.deepEqual(result, results[0]);
    assert.equal(results[0]?.rows, 4);
    assert.equal(results[0]?.rowErrors, 1);
  });

  test("a queued upload's batches reach the queue", async () => {
    const upload = await accepted("id\n1\n2\n3\n4\n5\n6\n7\n");
    assert.equal(upload.batches.total, 3);
    await waitFor("3 batches to be confirmed by the broker", async () => {
      const { body } = await getJson(`${api.url}/uploads/${upload.id}`);
      return body.batches.published === 3;
    });
    assert.ok((await published()) >= 3);
  });
});
