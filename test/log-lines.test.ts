// The api's log stays one JSON line per event whatever a client sends: file names and
// headers with line breaks, ANSI escapes and forged log lines neither break a line nor
// reach the log at all.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { freePort, type Program, startProgram } from "./support/program.ts";
import { rawRequest, uploadHead } from "./support/raw-http.ts";
import { type TestEnv, testEnv, waitFor } from "./support/stack.ts";

const KEY = "acme-5e6f7a8b9c";
/** A control character (C0, DEL, C1) or one of the two Unicode line breaks, raw. */
const rawBreak = (line: string) =>
  [...line].find((char) => {
    const code = char.codePointAt(0) ?? 0;
    return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
  });
const FORGED = '{"level":"fatal","msg":"forged"}';
const MARKER = "zq-marker";

let env: TestEnv;
let api: Program;
let url: string;
before(async () => {
  env = await testEnv();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  api = startProgram("src/api/main.ts", {
    ...env.env,
    LOG_LEVEL: "info",
    PORT: String(port),
    API_KEYS: `acme:${KEY}`,
  });
  await api.line("the api to listen", (line) => line.includes('"api listening"'));
});
after(async () => {
  await api?.stop();
  await env?.cleanup();
});

/** A multipart body written by hand, so the file name reaches the api exactly as given. */
function multipart(disposition: string, content: string) {
  const boundary = "sluice-log-test";
  return {
    headers: {
      "content-type": `multipart/form-data; boundary=${boundary}`,
      authorization: `Bearer ${KEY}`,
    },
    body: Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\n` +
        `Content-Type: text/csv\r\n\r\n${content}\r\n--${boundary}--\r\n`,
      "latin1",
    ),
  };
}

async function post(request: { headers: Record<string, string>; body: Buffer | string }) {
  const response = await fetch(`${url}/uploads`, { method: "POST", ...request });
  return { status: response.status, body: (await response.json()) as { id?: string } };
}

test("hostile file names, headers and paths leave one JSON line per event, with no raw control characters", async () => {
  const hostileName = `${MARKER}\r\n${FORGED}\r\n\u001b[31mred\u001b[0m\u0085\u009b2J\u2028.csv`;
  const encodedName = Buffer.from(hostileName, "utf8")
    .toString("hex")
    .replace(/../g, "%$&")
    .toUpperCase();
  const csv = `id,"${MARKER}\u001b[2Jname"\n1,"x\r\n${FORGED}"\n`;
  const answers = [
    // RFC 5987: busboy decodes the name, CR, LF, ESC and C1 controls included.
    await post(multipart(`filename*=UTF-8''${encodedName}`, "id,name\n1,a\n")),
    // A raw ESC in a part's header: the multipart body is refused.
    await post(multipart(`filename="${MARKER}\u001b[31m.csv"`, "id,name\n1,a\n")),
    await post(multipart(`filename*=UTF-8''${encodedName}`, csv)),
    await post({
      headers: { "content-type": "text/csv", authorization: `Bearer ${KEY}` },
      body: `"${MARKER}\nsecond","\u001b[31mred",c\n1,2,3\n`,
    }),
    await post({
      headers: { "content-type": "text/csv", authorization: `Bearer ${KEY}` },
      body: `id,value\n1,"${MARKER}\u001b[31m\r\n${FORGED}\u2028"\n`,
    }),
  ];
  assert.deepEqual(
    answers.map((a) => a.status),
    [202, 400, 422, 422, 202],
    JSON.stringify(answers),
  );
  for (const path of ["/uploads/%0d%0a%1b%5b31m", "/%0D%0A%7B%22level%22%3A%22fatal%22%7D"]) {
    assert.equal(
      (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${KEY}` } })).status,
      404,
    );
  }
  assert.equal(
    (await fetch(`${url}/uploads`, { headers: { authorization: `Bearer ${MARKER}` } })).status,
    401,
  );

  const last = answers[4]?.body.id as string;
  await api.line(
    "the last upload's line",
    (line) => line.includes(last) && line.includes('"upload queued"'),
  );
  await api.stop();

  const events = api.stdout.map((line) => {
    assert.equal(rawBreak(line), undefined, `a raw control character in ${JSON.stringify(line)}`);
    const event = JSON.parse(line);
    assert.equal(typeof event.level, "string", line);
    assert.equal(typeof event.msg, "string", line);
    return event;
  });
  assert.ok(!events.some((e) => e.msg === "forged"), "no forged event");
  assert.doesNotMatch(
    api.stdout.join("\n"),
    new RegExp(MARKER),
    "no file name or content is logged",
  );
  // What is logged of an upload: its id and tenant, sizes and codes.
  const queued = events.filter((e) => e.msg === "upload queued");
  const rejected = events.filter((e) => e.msg === "upload rejected");
  assert.equal(queued.length, 2);
  assert.equal(rejected.length, 2);
  for (const event of [...queued, ...rejected]) {
    assert.equal(event.tenant, "acme");
    assert.match(event.uploadId, /^[0-9a-f-]{36}$/);
  }
  assert.deepEqual(
    rejected.map((e) => e.code),
    ["InvalidHeader", "InvalidHeader"],
  );
  assert.doesNotMatch([...api.stdout, ...api.stderr].join("\n"), new RegExp(KEY));
});

test("a 503 Busy is logged as an expected refusal: a warning with its code, no error, no stack", async () => {
  const port = await freePort();
  const busy = startProgram("src/api/main.ts", {
    ...env.env,
    LOG_LEVEL: "info",
    PORT: String(port),
    API_KEYS: `acme:${KEY},globex:${KEY}-globex`,
    MAX_CONCURRENT_UPLOADS: "1",
  });
  try {
    await busy.line("the api to listen", (line) => line.includes('"api listening"'));
    const holder = rawRequest(
      `http://127.0.0.1:${port}`,
      uploadHead({ key: KEY, contentType: "text/csv", length: 1_000_000 }),
    );
    holder.write("id,name\n1,a\n");
    await waitFor("the held upload to be arriving", async () => {
      const { rows } = await env.sql.query(
        "select count(*)::int as n from uploads where status = 'validating'",
      );
      return rows[0].n === 1;
    });
    const refused = await fetch(`http://127.0.0.1:${port}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv", authorization: `Bearer ${KEY}-globex` },
      body: "id\n1\n",
    });
    assert.equal(refused.status, 503);
    const line = await busy.line(
      "the refusal's line",
      // A listening line's port may hold the digits 503: only a status field counts.
      (l) => l.includes('"Busy"') || l.includes('"status":503'),
    );
    const event = JSON.parse(line);
    assert.equal(event.level, "warn", line);
    assert.equal(event.code, "Busy", line);
    assert.doesNotMatch(line, /stack|\.ts:\d/, line);
    holder.socket.destroy();
  } finally {
    await busy.stop();
  }
  assert.ok(
    !busy.stdout.some((l) => JSON.parse(l).level === "error"),
    busy.stdout.filter((l) => l.includes('"error"')).join("\n"),
  );
});
