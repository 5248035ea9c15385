import assert from "node:assert/strict";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { AppError } from "../http/app-error.ts";
import { readSpool } from "./batch-spool.ts";
import { CsvFormatError } from "./csv/csv-reader.ts";
import { createParsingThreadClient } from "./parsing-thread-client.ts";

const dir = await mkdtemp(join(tmpdir(), "sluice-intake-"));
const parser = createParsingThreadClient();
after(async () => {
  await parser.close();
  await rm(dir, { recursive: true, force: true });
});

const csv = { maxColumns: 10, maxFieldBytes: 100, maxRowBytes: 400 };
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

function chunks(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

async function rowsOf(path: string): Promise<unknown[]> {
  const rows: unknown[] = [];
  for await (const batch of readSpool(path, 0))
    rows.push(...JSON.parse(batch.body.toString()).rows);
  return rows;
}

test("uploads received at once are parsed side by side, each into its own batches", async () => {
  const a = `id,name\n${Array.from({ length: 50 }, (_, i) => `${i},"a ${i}"`).join("\n")}\n`;
  const b = `x;y\n${Array.from({ length: 30 }, (_, i) => `${i};b`).join("\r\n")}`;
  const first = parser.open({ id: "a", path: join(dir, "a"), batchSize: 7, csv });
  const second = parser.open({ id: "b", path: join(dir, "b"), batchSize: 7, csv });
  const [ca, cb] = [chunks(a, 5), chunks(b, 3)];
  for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
    if (ca[i]) await first.push(ca[i] as Buffer);
    if (cb[i]) await second.push(cb[i] as Buffer);
  }
  const [sa, sb] = await Promise.all([first.end(), second.end()]);
  assert.equal(sa.summary.rows, 50);
  assert.equal(sa.batches, 8);
  assert.deepEqual(sb.summary.header.columns, ["x", "y"]);
  assert.equal(sb.summary.rows, 30);
  const rows = await rowsOf(join(dir, "a"));
  assert.equal(rows.length, 50);
  assert.deepEqual(rows[49], { row: 50, values: ["49", "a 49"] });
  assert.deepEqual((await rowsOf(join(dir, "b")))[0], { row: 1, values: ["0", "b"] });
});

test("a bad file fails its upload with where, and leaves no file", async () => {
  const path = join(dir, "bad");
  const session = parser.open({ id: "bad", path, batchSize: 7, csv });
  const failure = (async () => {
    for (const chunk of chunks('id,name\n1,"open\n2,b\n', 4)) await session.push(chunk);
    return session.end();
  })();
  await assert.rejects(failure, (err: unknown) => {
    assert.ok(err instanceof CsvFormatError);
    assert.equal(err.code, "UnterminatedQuote");
    assert.deepEqual(err.details, { line: 2, column: 3 });
    return true;
  });
  assert.equal(await exists(path), false);
});

test("an upload given up by the main thread leaves no file", async () => {
  const path = join(dir, "gone");
  const session = parser.open({ id: "gone", path, batchSize: 1, csv });
  await session.push(Buffer.from("id\n1\n2\n3\n"));
  await session.abort();
  assert.equal(await exists(path), false);
});

test("closing the parser fails an upload still arriving, plainly", async () => {
  const own = createParsingThreadClient();
  const session = own.open({ id: "late", path: join(dir, "late"), batchSize: 1, csv });
  await session.push(Buffer.from("id\n1\n"));
  await own.close();
  await assert.rejects(session.end(), /the api is stopping/);
});

test("one upload holding more than the thread's heap can take is refused as Busy, and the thread goes on", async () => {
  const own = createParsingThreadClient();
  const path = join(dir, "huge");
  // Limits no configuration has, and a chunk no request body delivers: 160 MiB of one field.
  const session = own.open({
    id: "huge",
    path,
    batchSize: 1_000,
    csv: { ...csv, maxFieldBytes: 1 << 30, maxRowBytes: 1 << 30 },
  });
  const failure = (async () => {
    await session.push(Buffer.from("id\n"));
    await session.push(Buffer.alloc(160 << 20, 0x78));
    return session.end();
  })();
  await assert.rejects(failure, (err: unknown) => err instanceof AppError && err.code === "Busy");
  assert.equal(await exists(path), false);

  const next = own.open({ id: "next", path: join(dir, "next"), batchSize: 2, csv });
  await next.push(Buffer.from("id\n1\n2\n3\n"));
  assert.equal((await next.end()).summary.rows, 3);
  await own.close();
});

test("uploads holding more than the thread's heap can take fail one by one as Busy; the thread and the others go on", async () => {
  const own = createParsingThreadClient();
  const wide = { maxColumns: 64, maxFieldBytes: 1 << 17, maxRowBytes: 1 << 20 };
  const header = Buffer.from(`${Array.from({ length: 50 }, (_, c) => `c${c}`).join(",")}\n`);
  const row = `${Array.from({ length: 50 }, () => "v".repeat(100)).join(",")}\n`;
  // About 1 MB of rows each: a batch in the making that none of them completes yet.
  const rows = Buffer.from(row.repeat(190));
  const count = 80;
  const sessions = Array.from({ length: count }, (_, i) =>
    own.open({ id: `wide-${i}`, path: join(dir, `wide-${i}`), batchSize: 1_000, csv: wide }),
  );
  const pushed = await Promise.allSettled(
    sessions.map(async (session) => {
      await session.push(Buffer.from(header));
      for (let at = 0; at < rows.length; at += 65_536) {
        await session.push(Buffer.from(rows.subarray(at, at + 65_536)));
      }
    }),
  );
  const ended = await Promise.allSettled(
    sessions.map((session, i) =>
      pushed[i]?.status === "fulfilled" ? session.end() : Promise.reject(pushed[i]?.reason),
    ),
  );
  const failures = ended.flatMap((e) => (e.status === "rejected" ? [e.reason] : []));
  const landed = ended.filter((e) => e.status === "fulfilled").length;
  assert.ok(failures.length > 0, "some uploads were refused");
  for (const failure of failures) {
    assert.ok(failure instanceof AppError, String(failure));
    assert.equal(failure.code, "Busy");
  }
  assert.ok(landed > 0, "the others landed");
  for (const outcome of ended) {
    if (outcome.status === "fulfilled") assert.equal(outcome.value.summary.rows, 190);
  }
  // The thread still serves.
  const next = own.open({ id: "after", path: join(dir, "after"), batchSize: 2, csv });
  await next.push(Buffer.from("id\n1\n"));
  assert.equal((await next.end()).summary.rows, 1);
  await own.close();
});
