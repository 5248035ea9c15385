import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { after, before, test } from "node:test";
import pg from "pg";
import { failure } from "../../../test/support/failure.ts";
import { DependencyTimeoutError } from "../dependencies.ts";
import { allowLongerAnswers, createWatchedPool } from "./watched-client.ts";

const POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres";

let silentUrl: string;
const held = new Set<Socket>();
const silent = createServer((socket) => {
  held.add(socket);
  socket.on("data", () => undefined);
  socket.on("error", () => undefined);
});
before(async () => {
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  silentUrl = `postgres://postgres:secret@127.0.0.1:${(silent.address() as { port: number }).port}/x`;
});
after(async () => {
  for (const socket of held) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

test("a server that takes the connection and says nothing fails the connect, naming it", async () => {
  const pool = createWatchedPool(
    { connectionString: silentUrl },
    { connectMs: 300, answerMs: 300 },
  );
  const err = await failure(() => pool.query("select 1"));
  assert.ok(err instanceof DependencyTimeoutError, String(err));
  assert.equal(err.dependency, "PostgreSQL");
  assert.equal(
    err.message,
    `PostgreSQL at ${silentUrl.replace("secret", "***")} did not answer within 300 ms`,
  );
  await pool.end();
});

test("a query answered too slowly fails and its connection leaves the pool; an idle one stays", async () => {
  const pool = createWatchedPool(
    { connectionString: POSTGRES },
    { connectMs: 2000, answerMs: 300 },
  );
  pool.on("error", () => undefined);
  const client = await pool.connect();
  client.on("error", () => undefined);
  const { rows } = await client.query("select pg_backend_pid() as pid");
  // The connection sits idle for longer than answerMs while another one waits on the server.
  const other = new pg.Client({ connectionString: POSTGRES });
  await other.connect();
  await other.query("select pg_sleep(0.6)");
  await other.end();
  const again = await client.query("select pg_backend_pid() as pid");
  assert.equal(again.rows[0].pid, rows[0].pid, "the idle connection was kept");
  // PostgreSQL too gives up on a statement the client would no longer wait for.
  const { rows: setting } = await client.query("show statement_timeout");
  assert.equal(setting[0].statement_timeout, "300ms");

  // With PostgreSQL's own timeout off, only the client's watch ends the wait.
  await client.query("set statement_timeout = 0");
  const err = await failure(() => client.query("select pg_sleep(5)"));
  assert.ok(err instanceof DependencyTimeoutError, String(err));
  client.release();
  assert.equal(pool.totalCount, 0, "the silent connection is not handed out again");
  await pool.end();
});

test("a checkout may allow a longer answer, until the pool hands the connection out again", async () => {
  const pool = createWatchedPool(
    { connectionString: POSTGRES },
    { connectMs: 2000, answerMs: 300 },
  );
  const client = await pool.connect();
  allowLongerAnswers(client, 5000);
  await client.query("begin; set local statement_timeout = 5000; select pg_sleep(0.6); commit");
  client.release();
  const next = await pool.connect();
  next.on("error", () => undefined);
  await next.query("set statement_timeout = 0");
  const err = await failure(() => next.query("select pg_sleep(5)"));
  assert.ok(err instanceof DependencyTimeoutError, String(err));
  next.release();
  await pool.end();
});
