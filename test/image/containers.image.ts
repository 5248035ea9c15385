// The images built by `npm run image:build` run as the chart runs them: read-only root, UID
// 1000, no capabilities, no privilege escalation, writable only where the chart mounts a
// volume. Against the machine's PostgreSQL, Redis, RabbitMQ and an S3-compatible server, the
// three programs start, answer their probes, land an upload exactly once, and shut down
// gracefully on SIGTERM; the dev image's PID 1 does too. Needs root and a Docker engine:
// `npm run image:build && npm run test:image`.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import pg from "pg";
import { IMAGES } from "../../scripts/image.ts";
import { NODE_OPTIONS } from "../../src/core/program/node-options.ts";
import { container, find, render, valueSets } from "../kubernetes/chart.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import { freePort } from "../support/program.ts";
import { getJson, listBatchObjects, type TestEnv, testEnv, waitFor } from "../support/stack.ts";
import {
  CHART_SECURITY,
  CHART_USER,
  type Container,
  imageCommand,
  imageSize,
  logEntries,
  startContainer,
} from "./containers.ts";

const UPLOAD_DIR = "/var/lib/sluice/uploads";
const ROWS = 100_000;
const BATCH_SIZE = 1000;
const programs = ["api", "worker", "controller"] as const;
type ProgramName = (typeof programs)[number];

let env: TestEnv;
let settings: Record<string, string>;
let ports: Record<ProgramName, number>;
const key = randomBytes(16).toString("hex");
const running = new Map<ProgramName, Container>();
const started: Container[] = [];

const report = (check: string, figure: string) => console.log(`image check: ${check}: ${figure}`);

before(async () => {
  env = await testEnv();
  // Production creates neither its database nor its bucket: an operator does.
  const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await admin.connect();
  await admin.query(
    `create database "${new URL(env.env.DATABASE_URL as string).pathname.slice(1)}"`,
  );
  await admin.end();
  await env.s3.send(new CreateBucketCommand({ Bucket: env.config.s3.bucket }));
  ports = { api: await freePort(), worker: await freePort(), controller: await freePort() };
  // What the chart's ConfigMap and Secret give every program.
  settings = {
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    DATABASE_URL: env.env.DATABASE_URL as string,
    REDIS_URL: "redis://127.0.0.1:6379",
    RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:5672",
    SLUICE_NAMESPACE: env.config.namespace,
    S3_BUCKET: env.config.s3.bucket,
    AWS_REGION: "us-east-1",
    AWS_ENDPOINT: env.env.AWS_ENDPOINT as string,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    UPLOAD_DIR,
    API_KEYS: `image:${key}`,
    SHUTDOWN_TIMEOUT_MS: "20000",
    PORT: String(ports.api),
    WORKER_PORT: String(ports.worker),
    CONTROLLER_PORT: String(ports.controller),
  };
  for (const [target, image] of Object.entries(IMAGES)) {
    report(`${target} image size`, `${image} ${((await imageSize(image)) / 1e6).toFixed(0)} MB`);
  }
});

after(async () => {
  for (const container of started) await container.remove();
  await env?.cleanup();
});

/** A program of the production image, as the chart's Deployment runs it. */
async function startProgram(program: ProgramName): Promise<Container> {
  const options = [...CHART_SECURITY];
  if (program === "api") {
    options.push("--tmpfs", `${UPLOAD_DIR}:rw,size=2g,uid=1000,gid=1000,mode=0770`);
  }
  const command = ["node", ...NODE_OPTIONS[program].split(" "), `dist/${program}/main.js`];
  const container = await startContainer(IMAGES.production, options, settings, command);
  started.push(container);
  return container;
}

const shutDownLine = (container: Container) =>
  logEntries(container).find((e) => e.msg === "shutting down" && e.reason === "SIGTERM");

test("the production image's api, worker and controller start under the chart's settings and answer their probes", async () => {
  for (const program of programs) running.set(program, await startProgram(program));
  for (const program of programs) {
    const base = `http://127.0.0.1:${ports[program]}`;
    const probe = async (path: string) =>
      waitFor(
        `${program} ${path}`,
        async () => {
          const answer = await fetch(`${base}${path}`).catch(() => undefined);
          return answer?.status === 200 && answer.status;
        },
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${running.get(program)?.lines.join("\n")}`);
      });
    const healthz = await probe("/healthz");
    const readyz = await probe("/readyz");
    const pid1 = await running.get(program)?.pid1();
    report(`${program} probes`, `/healthz ${healthz}, /readyz ${readyz}; PID 1: ${pid1}`);
    assert.match(pid1 ?? "", new RegExp(`^node .*dist/${program}/main\\.js$`));
  }
});

test(`an upload of ${ROWS.toLocaleString("en")} rows through the containers lands exactly once`, async () => {
  const sample = sampleCsv(ROWS);
  const api = `http://127.0.0.1:${ports.api}`;
  const headers = { authorization: `Bearer ${key}` };
  const accepted = await getJson(`${api}/uploads`, {
    method: "POST",
    headers: { ...headers, "content-type": "text/csv" },
    body: sample.csv,
  });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  const id = accepted.body.id as string;
  const final = await waitFor(
    "the upload to complete",
    async () => {
      const { body } = await getJson(`${api}/uploads/${id}`, { headers });
      return ["completed", "failed", "rejected"].includes(body.status) && body;
    },
    300_000,
  );
  assert.equal(final.status, "completed", JSON.stringify(final));

  const { rows } = await env.sql.query(
    "select count(*)::int as n, count(distinct row_number)::int as d, min(row_number)::int as lo, max(row_number)::int as hi from upload_rows where upload_id = $1",
    [id],
  );
  const objects = await listBatchObjects(env, id);
  report(
    "upload",
    `${Buffer.byteLength(sample.csv)} bytes; ${rows[0].n} rows in PostgreSQL (${rows[0].d} distinct, ${rows[0].lo}..${rows[0].hi}); ${objects.length} objects in S3`,
  );
  assert.deepEqual(rows[0], { n: ROWS, d: ROWS, lo: 1, hi: ROWS });
  assert.equal(objects.length, ROWS / BATCH_SIZE);
  assert.equal(final.rowsLanded, ROWS);
});

test("SIGTERM stops each production container through its graceful shutdown", async () => {
  for (const program of programs) {
    const container = running.get(program);
    assert.ok(container, `${program} is running`);
    const code = await container.terminate();
    const line = shutDownLine(container);
    const late = logEntries(container).some(
      (e) => e.msg === "shutdown deadline passed; exiting anyway",
    );
    report(`${program} SIGTERM`, `exit code ${code}, shutdown line ${line ? "logged" : "missing"}`);
    assert.equal(code, 0, container.lines.join("\n"));
    assert.ok(line, `${program} logged its shutdown`);
    assert.ok(!late, `${program} finished its shutdown before the deadline`);
  }
});

/** The command the chart's debug mode (values-dev.yaml, Tilt) gives a program. */
async function debugCommand(program: ProgramName): Promise<string[]> {
  const files = valueSets.find((s) => s.name === "values-dev.yaml")?.files ?? [];
  return container(find(await render({ files }), "Deployment", `sluice-${program}`)).command ?? [];
}

// The dev stage as the chart's debug mode runs it: UID 1000, writable root (Tilt syncs files).
for (const program of ["api", "controller"] as const) {
  test(`dev image, ${program} as the chart's debug mode runs it: PID 1 stops through the graceful shutdown on SIGTERM`, async () => {
    const port = await freePort();
    const command = await debugCommand(program);
    // The api's is the image's own command too.
    if (program === "api") assert.deepEqual(command, await imageCommand(IMAGES.dev));
    const portVariable = program === "api" ? "PORT" : "CONTROLLER_PORT";
    const container = await startContainer(
      IMAGES.dev,
      CHART_USER,
      {
        ...settings,
        NODE_ENV: "development",
        [portVariable]: String(port),
        UPLOAD_DIR: "/tmp/uploads",
      },
      command,
    );
    started.push(container);
    const healthz = await waitFor(`the dev ${program}'s /healthz`, async () => {
      const answer = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return answer?.status === 200 && answer.status;
    });
    const pid1 = await container.pid1();
    if (program === "api") {
      // Tilt reruns `npm ci --omit=dev` in the pod, as UID 1000: npm's cache must be its own.
      const cache = await container.exec([
        "sh",
        "-c",
        'd=$(npm config get cache) && touch "$d/.w" && echo "$d"',
      ]);
      report("dev npm cache", `writable by 1000:1000 at ${cache.trim()}`);
    }
    const code = await container.terminate();
    const line = shutDownLine(container);
    report(
      `dev ${program}`,
      `PID 1: ${pid1}; /healthz ${healthz}; SIGTERM: exit code ${code}, shutdown line ${line ? "logged" : "missing"}`,
    );
    assert.equal(code, 0, container.lines.join("\n"));
    assert.ok(line, `the dev ${program} logged its shutdown:\n${container.lines.join("\n")}`);
  });
}
