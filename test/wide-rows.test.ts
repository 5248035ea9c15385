// Wide rows within the default limits land, rows past them become row errors, and none of
// it fails another tenant's upload arriving on the same api process at the same time.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { getJson, type InProcess, stackStarter, type TestEnv, waitFor } from "./support/stack.ts";

const startStack = stackStarter();
let env: TestEnv;
let api: InProcess;
before(async () => {
  // The default limits, as `npm start` runs; two tenants.
  ({ env, api } = await startStack({ API_KEYS: "wide:key-wide,other:key-other" }));
});

const FIELD_BYTES = 131_072;
const ROW_BYTES = 1_048_576;

/** Sends the body in 64 KiB chunks, as a client's connection delivers it. */
function post(body: Buffer, key = "key-wide") {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < body.length; at += 65_536) {
        controller.enqueue(body.subarray(at, at + 65_536));
      }
      controller.close();
    },
  });
  return getJson(`${api.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv", authorization: `Bearer ${key}` },
    body: stream,
    duplex: "half",
  } as RequestInit);
}

const auth = (key = "key-wide") => ({ headers: { authorization: `Bearer ${key}` } });

async function completed(id: string, key = "key-wide") {
  return waitFor(`upload ${id} completed`, async () => {
    const { body } = await getJson(`${api.url}/uploads/${id}`, auth(key));
    return body.status === "completed" && body;
  });
}

async function rowErrors(id: string): Promise<string[]> {
  const response = await fetch(`${api.url}/uploads/${id}/errors`, auth());
  return (await response.text()).trim().split("\n").slice(1);
}

/** 50 columns of 100 characters a row, about 12.6 MB. */
function wideFile(): { body: Buffer; rows: number } {
  const lines = [Array.from({ length: 50 }, (_, c) => `column_${c}`).join(",")];
  let rows = 0;
  for (let size = 0; size < 12_600_000; rows++) {
    const line = Array.from({ length: 50 }, (_, c) => `${rows}.${c}.`.padEnd(100, "v")).join(",");
    lines.push(line);
    size += line.length + 1;
  }
  return { body: Buffer.from(`${lines.join("\n")}\n`), rows };
}

test("a 12.6 MB file of 50 columns of 100 characters lands whole, beside another tenant's upload", async () => {
  const { body, rows } = wideFile();
  // The other tenant's body is half sent while the wide file arrives, and ends after it.
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const half = Buffer.from(
    `id,name\n${Array.from({ length: 2_500 }, (_, i) => `${i},n${i}`).join("\n")}\n`,
  );
  const rest = Buffer.from(
    `${Array.from({ length: 2_500 }, (_, i) => `${i + 2_500},n${i + 2_500}`).join("\n")}\n`,
  );
  const other = getJson(`${api.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv", authorization: "Bearer key-other" },
    body: new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(half);
        await released;
        controller.enqueue(rest);
        controller.close();
      },
    }),
    duplex: "half",
  } as RequestInit);
  await waitFor("the other upload to be arriving", async () => {
    const { rows } = await env.sql.query("select status from uploads where tenant = 'other'");
    return rows[0]?.status === "validating";
  });
  const wide = await post(body);
  release();
  const second = await other;
  assert.deepEqual(
    [wide.status, second.status],
    [202, 202],
    JSON.stringify([wide.body, second.body]).slice(0, 500),
  );
  assert.equal(wide.body.rows, rows);
  const landed = await completed(wide.body.id);
  assert.equal(landed.rowsLanded, rows);
  assert.equal(landed.rowErrors, 0);
  const { rows: sample } = await env.sql.query(
    "select data from upload_rows where upload_id = $1 and row_number = $2",
    [wide.body.id, rows],
  );
  assert.equal(sample[0].data.column_49, `${rows - 1}.49.`.padEnd(100, "v"));
  assert.equal((await completed(second.body.id, "key-other")).rowsLanded, 5_000);
});

test("a 3 MB row of 30 fields, each under MAX_FIELD_BYTES, is a row error; the rows around it land", async () => {
  const header = Array.from({ length: 30 }, (_, c) => `f${c}`).join(",");
  const short = Array.from({ length: 30 }, (_, c) => `${c}`).join(",");
  const huge = Array.from({ length: 30 }, () => "w".repeat(FIELD_BYTES - 31_072)).join(",");
  assert.ok(huge.length > 2 * ROW_BYTES);
  const response = await post(Buffer.from(`${header}\n${short}\n${huge}\n${short}\n`));
  assert.equal(response.status, 202, JSON.stringify(response.body));
  assert.equal(response.body.rows, 3);
  assert.equal(response.body.rowErrors, 1);
  assert.equal((await completed(response.body.id)).rowsLanded, 2);
  const errors = await rowErrors(response.body.id);
  assert.equal(errors.length, 1);
  assert.match(errors[0] as string, /^2,3,RowTooLarge,/);
});

test("a 5,000-byte header name named in every row error keeps each message short", async () => {
  const name = "n".repeat(5_000);
  const rows = 1_000;
  const response = await post(Buffer.from(`${name}\n${"\u0000\n".repeat(rows)}`));
  assert.equal(response.status, 202, JSON.stringify(response.body).slice(0, 300));
  assert.equal(response.body.rowErrors, rows);
  await completed(response.body.id);
  const errors = await rowErrors(response.body.id);
  assert.equal(errors.length, rows);
  for (const line of errors) {
    assert.match(line, /NulByte/);
    assert.ok(line.length < 300, line.slice(0, 300));
  }
});
