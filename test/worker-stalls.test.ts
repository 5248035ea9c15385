// A worker whose PostgreSQL, Redis or S3 keeps the connection open but stops answering in
// the middle of a batch does not wait for it forever: the batch fails and is retried, and
// every row lands exactly once after the service answers again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import { freePort, startProgram } from "./support/program.ts";
import {
  acceptedUpload,
  getJson,
  listBatchObjects,
  metricSample,
  startInProcess,
  startWorkerInProcess,
  testEnv,
  waitFor,
} from "./support/stack.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

const ROWS = 2_500;

for (const [service, variable] of [
  ["PostgreSQL", "DATABASE_URL"],
  ["Redis", "REDIS_URL"],
  ["S3", "AWS_ENDPOINT"],
] as const) {
  test(`${service} stops answering mid-batch: the batch is retried, then every row lands once`, async () => {
    const env = await testEnv({
      // Enough attempts that the batch is still retrying when the service is back.
      MAX_ATTEMPTS: "10",
    });
    const url = variable === "REDIS_URL" ? "redis://127.0.0.1:6379" : env.env[variable];
    assert.ok(url);
    const { hostname, port } = new URL(url);
    const proxy = await startTcpProxy({ host: hostname, port: Number(port) });
    // The api talks to the services directly; only the worker goes through the proxy.
    const api = await startInProcess(env, { worker: false });
    // The worker waits a second for an answer; the api keeps the default patience.
    const config = loadConfig({
      ...env.env,
      [variable]: proxy.via(url),
      COMMAND_TIMEOUT_MS: "1000",
      DB_STATEMENT_TIMEOUT_MS: "1000",
    });
    const worker = await startWorkerInProcess(env, { config });
    const retried = async () =>
      (await metricSample(worker.url, "sluice_batches_consumed_total", 'outcome="retried"')) ?? 0;
    try {
      proxy.stall();
      const csv = `id,name\n${Array.from({ length: ROWS }, (_, i) => `${i},n${i}`).join("\n")}\n`;
      const { id } = await acceptedUpload(api.url, csv);

      await waitFor(
        `a batch to fail on ${service} and be retried`,
        async () => (await retried()) > 0,
      );
      await proxy.restore();
      const done = await waitFor("the upload to finish", async () => {
        const { body } = await getJson(`${api.url}/uploads/${id}`);
        return ["completed", "failed"].includes(body.status) && body;
      });
      assert.equal(done.status, "completed", JSON.stringify(done));
      const { rows } = await env.sql.query(
        "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
        [id],
      );
      assert.deepEqual(rows[0], { n: ROWS, distinct_rows: ROWS });
      assert.equal((await listBatchObjects(env, id)).length, 3);
    } finally {
      await proxy.restore();
      await worker.stop();
      await api.stop();
      await proxy.close();
      await env.cleanup();
    }
  });
}

test("the worker's /readyz names each service a batch needs that stops answering; /healthz stays 200", async () => {
  const env = await testEnv();
  const targets = {
    PostgreSQL: ["DATABASE_URL", env.env.DATABASE_URL],
    Redis: ["REDIS_URL", "redis://127.0.0.1:6379"],
    S3: ["AWS_ENDPOINT", env.env.AWS_ENDPOINT],
  } as const;
  const proxies = new Map<string, TcpProxy>();
  const via: Record<string, string> = {};
  for (const [service, [variable, url]] of Object.entries(targets)) {
    assert.ok(url);
    const { hostname, port } = new URL(url);
    const proxy = await startTcpProxy({ host: hostname, port: Number(port) });
    proxies.set(service, proxy);
    via[variable] = proxy.via(url);
  }
  const port = await freePort();
  const worker = startProgram("src/worker/main.ts", {
    ...env.env,
    ...via,
    LOG_LEVEL: "info",
    WORKER_PORT: String(port),
    COMMAND_TIMEOUT_MS: "2000",
  });
  const probe = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, body: await response.json() };
  };
  try {
    await worker.line("the worker to run", (line) => line.includes('"worker running"'));
    assert.deepEqual(await probe("/readyz"), { status: 200, body: { status: "ready" } });
    for (const [service, proxy] of proxies) {
      proxy.stall();
      assert.deepEqual(await probe("/readyz"), {
        status: 503,
        body: { status: "not ready", unavailable: [service] },
      });
      assert.equal((await probe("/healthz")).status, 200);
      await proxy.restore();
      await waitFor(
        `the worker to be ready once ${service} answers`,
        async () => (await probe("/readyz")).status === 200,
      );
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${worker.stdout.join("\n")}`, { cause: err });
  } finally {
    await worker.stop();
    for (const proxy of proxies.values()) await proxy.close();
    await env.cleanup();
  }
});
