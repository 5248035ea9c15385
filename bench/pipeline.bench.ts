// The whole pipeline on one generated file, side by side with psql \copy, csv-parse and
// pgloader: time, rows per second, CPU per program and the memory of Sluice's processes.
// Usage: npm run bench -- [--rows N] [--scale K] [--keep] [--target]
//        (or BENCH_ROWS, BENCH_SCALE, BENCH_KEEP=1, BENCH_TARGET=1)
// --target loads into a target (a typed table with a primary key) instead of upload_rows,
// beside psql \copy into that same table, then upserts into it holding half the keys.
// It builds dist/ (npm run build) and runs the compiled programs, as the image does.
// The last line printed is one JSON object with every figure.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ListObjectsCommand, S3Client } from "@aws-sdk/client-s3";
import amqp from "amqplib";
import { parse } from "csv-parse";
import { Redis } from "ioredis";
import pg from "pg";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { NODE_OPTIONS } from "../src/core/node-options.ts";
import { uploadPrefix } from "../src/core/storage/s3-keys.ts";
import { CSV_COLUMNS, generateCsv, tableDdl } from "./generate-csv.ts";
import {
  backendTracker,
  findProcess,
  machineBusy,
  machineCpu,
  parseStatCpu,
  processCpu,
  processMemory,
} from "./proc-stats.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PG = "postgres://postgres@127.0.0.1:5432";
const RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672";
const REDIS_URL = "redis://127.0.0.1:6379";
const BATCH_SIZE = 1_000;
const MAX_ATTEMPTS = 5;
const POLL_MS = 250;
const SAMPLE_MS = 200;
/** A run fails when the upload makes no progress for this long. */
const STALL_MS = 180_000;

// ---------------------------------------------------------------------------------------
// Options

function readOptions(): { rows: number; keep: boolean; target: boolean } {
  const { values } = parseArgs({
    options: {
      rows: { type: "string" },
      scale: { type: "string" },
      keep: { type: "boolean" },
      target: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "npm run bench -- [--rows N (1000000)] [--scale K (1)] [--keep] [--target]\n" +
        "  or BENCH_ROWS, BENCH_SCALE, BENCH_KEEP=1. --keep leaves the temporary folder\n" +
        "  (the CSV file and the S3 objects); databases and queues are always removed.\n" +
        "  --target (BENCH_TARGET=1): into a typed table through a target, beside psql \\copy\n" +
        "  into that table, then an upsert into the table holding half the keys.",
    );
    process.exit(0);
  }
  const count = (name: string, value: string | undefined, fallback: number) => {
    if (value === undefined || value === "") return fallback;
    const n = Number(value.replaceAll("_", ""));
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
    return n;
  };
  const rows = count("--rows", values.rows ?? process.env.BENCH_ROWS, 1_000_000);
  const scale = count("--scale", values.scale ?? process.env.BENCH_SCALE, 1);
  const keep = values.keep ?? ["1", "true"].includes(process.env.BENCH_KEEP ?? "");
  const target = values.target ?? ["1", "true"].includes(process.env.BENCH_TARGET ?? "");
  return { rows: rows * scale, keep, target };
}

// ---------------------------------------------------------------------------------------
// Clean-up: every resource registers how to undo it; undone in reverse order, once, on
// success, failure, Ctrl-C or SIGTERM.

const undo: Array<{ what: string; run: () => Promise<unknown> }> = [];
let cleaning: Promise<void> | undefined;

function onCleanup(what: string, run: () => Promise<unknown>): void {
  undo.push({ what, run });
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of undo.splice(0).reverse()) {
      try {
        await step.run();
      } catch (err) {
        console.error(`clean-up: could not ${step.what}: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/** Undoes, in reverse order, what was registered since `mark` (the length of `undo` then). */
async function undoSince(mark: number): Promise<void> {
  for (const step of undo.splice(mark).reverse()) {
    try {
      await step.run();
    } catch (err) {
      console.error(`clean-up: could not ${step.what}: ${(err as Error).message}`);
    }
  }
}

const children = new Set<ChildProcess>();
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = true;
    if (cleaning) {
      for (const child of children) child.kill("SIGKILL");
      process.exit(130);
    }
    console.error(`\n${signal}: cleaning up (again to force)`);
    void cleanup().then(() => process.exit(130));
  });
}
// Last resort if the process ends some other way: no program is left running.
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------
// Helpers

const seconds = (from: number) => (performance.now() - from) / 1000;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const round = (n: number, digits: number) => Number(n.toFixed(digits));

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function sql<T = Record<string, unknown>>(
  database: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: `${PG}/${database}` });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Clean-up outlives a PostgreSQL or RabbitMQ restart: it tries again for a minute. */
async function persistently(run: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await run();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

const dropDatabase = (name: string) =>
  persistently(() => sql("postgres", `drop database if exists ${name} with (force)`));

async function createDatabase(name: string): Promise<void> {
  await sql("postgres", `create database ${name}`);
  onCleanup(`drop database ${name}`, () => dropDatabase(name));
}

/** Flushes dirty pages now, so that no checkpoint left by one step lands in the next. */
const checkpoint = () => sql("postgres", "checkpoint");

/** A program's output, kept for the report: its last lines and how many were warnings or worse. */
type Output = { tail: string[]; warnings: Map<string, number> };

function capture(child: ChildProcess): Output {
  const output: Output = { tail: [], warnings: new Map() };
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      const level = /"level":"(warn|error|fatal)"/.exec(line)?.[1];
      if (level) {
        const message = `${level}: ${/"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line.slice(0, 200)}`;
        output.warnings.set(message, (output.warnings.get(message) ?? 0) + 1);
      }
      output.tail.push(line.slice(0, 2_000));
      if (output.tail.length > 40) output.tail.shift();
    }
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  return output;
}

/**
 * Runs a command to its end through `sh`, which then reads its own /proc stat: the CPU of
 * the children it has reaped is exactly the command's, whether or not it forked.
 */
async function runMeasured(
  command: string,
  args: string[],
): Promise<{ wall: number; cpu: number; stdout: string }> {
  const script = '"$@"; rc=$?; read -r stat < /proc/$$/stat; echo "@@cpu $stat"; exit $rc';
  const child = spawn("sh", ["-c", script, "sh", command, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const start = performance.now();
  const [code] = (await once(child, "exit")) as [number | null];
  const wall = seconds(start);
  children.delete(child);
  if (code !== 0)
    throw new Error(`${command} failed (exit ${code}): ${(stderr || stdout).slice(-2_000)}`);
  const statLine = /^@@cpu (.*)$/m.exec(stdout)?.[1];
  if (!statLine) throw new Error(`${command}: no CPU reading`);
  return { wall, cpu: parseStatCpu(statLine).children, stdout };
}

// ---------------------------------------------------------------------------------------
// Results

type Program = { name: string; cpu: number };
/** `machine`: CPU seconds the whole machine was busy meanwhile, whoever for. */
type Result = { key: string; name: string; wall: number; programs: Program[]; machine: number };

const cpuPerRow = (r: Result, rows: number) =>
  Object.fromEntries(r.programs.map((p) => [p.name.trim(), round((p.cpu / rows) * 1e6, 2)]));

// ---------------------------------------------------------------------------------------
// Baselines

async function copyBaseline(
  csv: string,
  rows: number,
  database: string,
  dir: string,
  /** A table that exists already; bench_copy, made here, without it. */
  table = "bench_copy",
): Promise<Result> {
  if (table === "bench_copy") await sql(database, tableDdl(table));
  // The backend reads its own CPU before and after, in the same session as the COPY.
  const script = join(dir, "copy.sql");
  await writeFile(
    script,
    [
      "\\set ON_ERROR_STOP on",
      "select '@@backend ' || pg_read_file('/proc/self/stat');",
      `\\copy ${table} (${CSV_COLUMNS.join(", ")}) from '${csv}' with (format csv, header true)`,
      "select '@@backend ' || pg_read_file('/proc/self/stat');",
      "",
    ].join("\n"),
  );
  await checkpoint();
  const postgresBefore = machineCpu("postgres");
  const machineBefore = machineBusy();
  const run = await runMeasured("psql", [
    "-X",
    "-q",
    "-At",
    "-h",
    "127.0.0.1",
    "-U",
    "postgres",
    "-d",
    database,
    "-f",
    script,
  ]);
  const machine = machineBusy() - machineBefore;
  const postgres = machineCpu("postgres") - postgresBefore;
  const [before, after] = [...run.stdout.matchAll(/^@@backend (.*)$/gm)].map(
    (m) => parseStatCpu(m[1] as string).self,
  );
  const [{ count }] = (await sql<{ count: number }>(
    database,
    `select count(*)::int as count from ${table}`,
  )) as [{ count: number }];
  if (count !== rows) throw new Error(`psql \\copy loaded ${count} rows, expected ${rows}`);
  return {
    key: "copy",
    name: "psql \\copy",
    wall: run.wall,
    programs: [
      { name: "psql", cpu: run.cpu },
      { name: "postgres_backends", cpu: (after ?? 0) - (before ?? 0) },
      { name: "postgres_all", cpu: postgres },
    ],
    machine,
  };
}

async function csvParseBaseline(csv: string, rows: number): Promise<Result> {
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  const machineBefore = machineBusy();
  const parser = createReadStream(csv).pipe(parse());
  let records = 0;
  parser.on("data", () => {
    records++;
  });
  await finished(parser);
  const cpu = process.cpuUsage(cpuBefore);
  const wall = seconds(start);
  const machine = machineBusy() - machineBefore;
  if (records - 1 !== rows) throw new Error(`csv-parse read ${records - 1} rows, expected ${rows}`);
  return {
    key: "csv_parse",
    name: "csv-parse",
    wall,
    programs: [{ name: "node", cpu: (cpu.user + cpu.system) / 1e6 }],
    machine,
  };
}

async function pgloaderBaseline(
  csv: string,
  rows: number,
  database: string,
  dir: string,
): Promise<Result | null> {
  try {
    execFileSync("sh", ["-c", "command -v pgloader"], { stdio: "ignore" });
  } catch {
    return null;
  }
  await sql(database, tableDdl("bench_pgloader"));
  const load = join(dir, "load.pgloader");
  await writeFile(
    load,
    `LOAD CSV
  FROM '${csv}' (${CSV_COLUMNS.join(", ")})
  INTO ${PG}/${database}
  TARGET TABLE bench_pgloader (${CSV_COLUMNS.join(", ")})
  WITH skip header = 1,
       fields optionally enclosed by '"',
       fields escaped by double-quote,
       fields terminated by ','
  ;
`,
  );
  await checkpoint();
  const postgresBefore = machineCpu("postgres");
  const machineBefore = machineBusy();
  const backends = backendTracker(database);
  const sampler = setInterval(backends.sample, SAMPLE_MS);
  const run = await runMeasured("pgloader", [
    "--root-dir",
    join(dir, "pgloader"),
    "--logfile",
    join(dir, "pgloader.log"),
    load,
  ]);
  clearInterval(sampler);
  backends.sample();
  const machine = machineBusy() - machineBefore;
  const postgres = machineCpu("postgres") - postgresBefore;
  const [{ count }] = (await sql<{ count: number }>(
    database,
    "select count(*)::int as count from bench_pgloader",
  )) as [{ count: number }];
  if (count !== rows) {
    throw new Error(
      `pgloader loaded ${count} rows, expected ${rows}:\n${run.stdout.slice(-3_000)}`,
    );
  }
  return {
    key: "pgloader",
    name: "pgloader",
    wall: run.wall,
    programs: [
      { name: "pgloader", cpu: run.cpu },
      { name: "postgres_backends", cpu: backends.seconds() },
      { name: "postgres_all", cpu: postgres },
    ],
    machine,
  };
}

// ---------------------------------------------------------------------------------------
// Sluice

type Running = { name: string; child: ChildProcess; output: Output };

const started: Running[] = [];

function startProgram(name: string, args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const output = capture(child);
  const running = { name, child, output };
  started.push(running);
  onCleanup(`stop the ${name}`, () => stopProgram(running));
  return running;
}

async function stopProgram({ child }: Running): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 25_000);
    await once(child, "exit");
    clearTimeout(timer);
  }
  children.delete(child);
}

function exitedEarly(program: Running): Error | undefined {
  const { child, output, name } = program;
  if (child.exitCode === null && child.signalCode === null) return undefined;
  return new Error(
    `the ${name} exited (${child.exitCode ?? child.signalCode}):\n${output.tail.join("\n")}`,
  );
}

async function waitReady(program: Running, url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const early = exitedEarly(program);
    if (early) throw early;
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the ${program.name} was not ready at ${url}`);
    await sleep(100);
  }
}

async function waitForLine(program: Running, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!program.output.tail.some((line) => pattern.test(line))) {
    const early = exitedEarly(program);
    if (early) throw early;
    if (Date.now() > deadline) throw new Error(`the ${program.name} did not start`);
    await sleep(50);
  }
}

/** Streams the file as the body of POST /uploads; resolves at the answer. */
function upload(url: string, csv: string, bytes: number): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: { "content-type": "text/csv", "content-length": String(bytes) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            reject(new Error(`POST /uploads answered ${res.statusCode}: ${text.slice(0, 500)}`));
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    createReadStream(csv).on("error", reject).pipe(req);
  });
}

/**
 * Pages with ListObjects (v1) and the last key as marker: s3rver makes v2 continuation
 * tokens with DES, which the OpenSSL of Node 24 no longer offers, so a v2 listing of more
 * than 1,000 keys fails there with InternalError.
 */
async function countObjects(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let count = 0;
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker: marker }),
    );
    const keys = (page.Contents ?? []).map((object) => object.Key as string);
    count += keys.length;
    if (!page.IsTruncated || keys.length === 0) return count;
    marker = keys.at(-1);
  }
}

type SluiceRun = {
  result: Result;
  uploadSeconds: number;
  publishedSeconds: number | undefined;
  queue: { max: number; mean: number };
  memory: Record<string, { peakMb: number; maxRssMb: number }>;
  /** RabbitMQ's server process: resident memory before the upload and the most sampled since. */
  broker: { startRssMb: number; maxRssMb: number };
  warnings: Record<string, Record<string, number>>;
};

/**
 * Landing in a target instead of upload_rows: `prepare` defines it and readies its table once
 * the programs run, and the run then counts the rows in `table`.
 */
type TargetRun = {
  name: string;
  table: string;
  prepare: (apiUrl: string, database: string) => Promise<void>;
};

async function sluiceRun(
  csv: string,
  rows: number,
  bytes: number,
  dir: string,
  suffix: string,
  target?: TargetRun,
): Promise<SluiceRun> {
  const database = `sluice_bench_${suffix}`;
  const namespace = `bench-${suffix}`;
  const bucket = `bench-${suffix}`;
  const [s3Port, apiPort, workerPort, controllerPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const endpoint = `http://127.0.0.1:${s3Port}`;
  const uploadDir = join(dir, "uploads");

  // Registered first, so it runs after the programs have stopped.
  onCleanup(`drop database ${database}`, () => dropDatabase(database));
  onCleanup("delete the queues and Redis keys", () =>
    persistently(() => deleteQueuesAndKeys(namespace)),
  );

  const s3Dir = join(dir, `s3-${suffix}`);
  await mkdir(s3Dir);
  const s3Server = startProgram(
    "s3 server",
    [join(ROOT, "scripts/local-s3.ts"), String(s3Port), s3Dir],
    {},
  );
  await waitForLine(s3Server, /^ready /);

  const env = {
    NODE_ENV: "development",
    LOG_LEVEL: "warn",
    DATABASE_URL: `${PG}/${database}`,
    REDIS_URL,
    RABBITMQ_URL,
    SLUICE_NAMESPACE: namespace,
    S3_BUCKET: bucket,
    UPLOAD_DIR: uploadDir,
    AWS_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    BATCH_SIZE: String(BATCH_SIZE),
    MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    PORT: String(apiPort),
    WORKER_PORT: String(workerPort),
    CONTROLLER_PORT: String(controllerPort),
  };
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  // One after the other: the first creates and migrates the database.
  // Launched as the image launches them: compiled to dist/, with their heap limits.
  const api = startProgram(
    "api",
    [...NODE_OPTIONS.api.split(" "), join(ROOT, "dist/api/main.js")],
    env,
  );
  await waitReady(api, `${apiUrl}/readyz`);
  const worker = startProgram(
    "worker",
    [...NODE_OPTIONS.worker.split(" "), join(ROOT, "dist/worker/main.js")],
    env,
  );
  await waitReady(worker, `http://127.0.0.1:${workerPort}/readyz`);
  const programs = [api, worker, s3Server];
  await target?.prepare(apiUrl, database);

  await checkpoint();
  const rabbitmq = findProcess("beam.smp", "rabbit boot");
  const backends = backendTracker(database);
  const maxRss: Record<string, number> = {};
  // RabbitMQ's resident memory is what batches waiting in its queue cost; its high-water
  // mark (VmHWM) spans the server's whole life, so the run samples it from its start.
  const brokerRss = () => (rabbitmq ? (processMemory(rabbitmq)?.rssMb ?? 0) : Number.NaN);
  const broker = { startRssMb: brokerRss(), maxRssMb: 0 };
  const sample = () => {
    for (const p of programs) {
      const memory = p.child.pid ? processMemory(p.child.pid) : undefined;
      if (memory) maxRss[p.name] = Math.max(maxRss[p.name] ?? 0, memory.rssMb);
    }
    broker.maxRssMb = Math.max(broker.maxRssMb, brokerRss());
    backends.sample();
  };
  const sampler = setInterval(sample, SAMPLE_MS);
  onCleanup("stop sampling memory", async () => clearInterval(sampler));

  const cpuOf = (p: Running) => (p.child.pid ? (processCpu(p.child.pid) ?? 0) : 0);
  const snapshot = () => ({
    api: cpuOf(api),
    worker: cpuOf(worker),
    s3: cpuOf(s3Server),
    postgres: machineCpu("postgres"),
    rabbitmq: rabbitmq ? (processCpu(rabbitmq) ?? 0) : 0,
    redis: machineCpu("redis-server"),
    machine: machineBusy(),
  });

  const before = snapshot();
  const start = performance.now();
  const answer = await upload(
    target ? `${apiUrl}/uploads?target=${target.name}` : `${apiUrl}/uploads`,
    csv,
    bytes,
  );
  const uploadSeconds = seconds(start);
  const apiAt202 = cpuOf(api);
  if (answer.status !== 202) {
    throw new Error(`POST /uploads answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  const id = answer.body.id as string;
  if (answer.body.rows !== rows) {
    throw new Error(`the api counted ${answer.body.rows} rows, expected ${rows}`);
  }
  console.log(`  202 after ${uploadSeconds.toFixed(1)} s, upload ${id}`);

  // Once a second: how far publishing is (PostgreSQL records it as it goes) and how many
  // batches wait in the queue: a queue that fills means the worker is the slower side.
  const probe = new pg.Client({ connectionString: `${PG}/${database}` });
  probe.on("error", () => undefined);
  await probe.connect();
  onCleanup("close the progress probe", () => probe.end());
  const [probePid] = (await probe.query("select pg_backend_pid() as pid")).rows as [
    { pid: number },
  ];
  backends.exclude(probePid.pid);
  const amqpProbe = await amqp.connect(RABBITMQ_URL);
  amqpProbe.on("error", () => undefined);
  onCleanup("close the queue probe", () => amqpProbe.close());
  const queueProbe = await amqpProbe.createChannel();
  const queue = queueNames(namespace).batches;
  let publishedSeconds: number | undefined;
  let published = 0;
  const depths: number[] = [];
  let lastProbe = 0;
  const probeProgress = async () => {
    const [row] = (
      await probe.query("select batches_published::int as n from uploads where id = $1", [id])
    ).rows as [{ n: number }];
    published = row.n;
    if (publishedSeconds === undefined && published === answer.body.batches.total) {
      publishedSeconds = seconds(start);
    }
    depths.push((await queueProbe.checkQueue(queue)).messageCount);
  };

  let lastLanded = -1;
  let lastChange = performance.now();
  let lastPrint = performance.now();
  for (;;) {
    for (const p of programs) {
      const early = exitedEarly(p);
      if (early) throw early;
    }
    const response = await fetch(`${apiUrl}/uploads/${id}`);
    const view = (await response.json()) as any;
    if (!response.ok) throw new Error(`GET /uploads/${id} answered ${response.status}`);
    if (performance.now() - lastProbe >= 1_000) {
      lastProbe = performance.now();
      await probeProgress();
    }
    if (view.status === "completed") break;
    if (["rejected", "failed", "cancelled"].includes(view.status)) {
      throw new Error(`upload ${id} is ${view.status}: ${JSON.stringify(view.error)}`);
    }
    if (view.rowsLanded !== lastLanded) {
      lastLanded = view.rowsLanded;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_MS) {
      throw new Error(
        `upload ${id} made no progress for ${STALL_MS / 1000} s: ${JSON.stringify(view)}`,
      );
    }
    if (performance.now() - lastPrint > 10_000) {
      lastPrint = performance.now();
      console.log(
        `  ${seconds(start).toFixed(0)} s: ${fmt(view.rowsLanded)} rows landed, ${published}/${view.batches.total} batches published, ${depths.at(-1)} waiting in the queue`,
      );
    }
    await sleep(POLL_MS);
  }
  const wall = seconds(start);
  const after = snapshot();
  clearInterval(sampler);
  sample();
  // Completion implies every batch was published, whether or not a probe saw it first.
  publishedSeconds ??= wall;
  await probeProgress();

  // Exactly once: every row in PostgreSQL once, every batch in S3 once.
  const [landed] = (await sql<{ total: number; distinct: number; min: number; max: number }>(
    database,
    target
      ? `select count(*)::int as total, count(distinct id)::int as distinct,
            min(id)::int as min, max(id)::int as max from ${target.table}`
      : `select count(*)::int as total, count(distinct row_number)::int as distinct,
            min(row_number)::int as min, max(row_number)::int as max
     from upload_rows where upload_id = $1`,
    target ? [] : [id],
  )) as [{ total: number; distinct: number; min: number; max: number }];
  const s3 = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const objects = await countObjects(s3, bucket, uploadPrefix(id));
  s3.destroy();
  const batches = Math.ceil(rows / BATCH_SIZE);
  const problems = [
    landed.total !== rows && `PostgreSQL holds ${landed.total} rows, expected ${rows}`,
    landed.distinct !== rows &&
      `PostgreSQL holds ${landed.distinct} distinct rows, expected ${rows}`,
    (landed.min !== 1 || landed.max !== rows) &&
      `row numbers run ${landed.min}..${landed.max}, expected 1..${rows}`,
    objects !== batches && `S3 holds ${objects} objects, expected ${batches}`,
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`Sluice lost or repeated data: ${problems.join("; ")}`);
  console.log(
    `  verified: ${fmt(rows)} distinct rows in PostgreSQL, ${fmt(objects)} objects in S3`,
  );

  const memory: SluiceRun["memory"] = {};
  for (const p of programs) {
    const m = p.child.pid ? processMemory(p.child.pid) : undefined;
    memory[p.name] = { peakMb: m?.peakMb ?? Number.NaN, maxRssMb: maxRss[p.name] ?? Number.NaN };
  }
  return {
    result: {
      key: "sluice",
      name: "sluice",
      wall,
      programs: [
        { name: "api", cpu: after.api - before.api },
        { name: "  api_to_202", cpu: apiAt202 - before.api },
        { name: "  api_after_202", cpu: after.api - apiAt202 },
        { name: "worker", cpu: after.worker - before.worker },
        { name: "s3_server", cpu: after.s3 - before.s3 },
        { name: "postgres_backends", cpu: backends.seconds() },
        { name: "postgres_all", cpu: after.postgres - before.postgres },
        { name: "rabbitmq", cpu: after.rabbitmq - before.rabbitmq },
        { name: "redis", cpu: after.redis - before.redis },
      ],
      machine: after.machine - before.machine,
    },
    uploadSeconds,
    publishedSeconds,
    queue: {
      max: Math.max(0, ...depths),
      mean: depths.reduce((sum, d) => sum + d, 0) / Math.max(1, depths.length),
    },
    memory,
    broker,
    warnings: Object.fromEntries(
      programs.map((p) => [p.name, Object.fromEntries(p.output.warnings)]),
    ),
  };
}

async function deleteQueuesAndKeys(namespace: string): Promise<void> {
  const names = queueNames(namespace);
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    for (const queue of [
      names.batches,
      names.dead,
      ...Array.from({ length: MAX_ATTEMPTS - 1 }, (_, i) => names.retry(i + 1)),
    ]) {
      await channel.deleteQueue(queue);
    }
  } finally {
    await connection.close();
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${namespace}:*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------------------------------
// Report

function printTable(results: Result[], rows: number, copy: Result, pgloader: Result | null) {
  const rate = (r: Result) => rows / r.wall;
  const header = [
    "pipeline".padEnd(12),
    "wall s".padStart(8),
    "rows/s".padStart(11),
    "vs COPY".padStart(8),
    "vs pgloader".padStart(12),
    "  program".padEnd(20),
    "CPU s".padStart(8),
    "µs/row".padStart(8),
  ].join(" ");
  console.log(`\n${header}\n${"-".repeat(header.length)}`);
  for (const r of results) {
    r.programs.forEach((p, i) => {
      const lead =
        i === 0
          ? [
              r.name.padEnd(12),
              r.wall.toFixed(2).padStart(8),
              fmt(rate(r)).padStart(11),
              (rate(r) / rate(copy)).toFixed(3).padStart(8),
              (pgloader ? (rate(r) / rate(pgloader)).toFixed(3) : "—").padStart(12),
            ]
          : ["".padEnd(12), "".padStart(8), "".padStart(11), "".padStart(8), "".padStart(12)];
      console.log(
        [
          ...lead,
          `  ${p.name}`.padEnd(20),
          p.cpu.toFixed(2).padStart(8),
          ((p.cpu / rows) * 1e6).toFixed(2).padStart(8),
        ].join(" "),
      );
    });
    console.log(
      `${" ".repeat(56)}${"  (machine busy)".padEnd(20)} ${r.machine.toFixed(2).padStart(8)} ${((r.machine / rows) * 1e6).toFixed(2).padStart(8)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// --target: a typed table with a primary key, in the tenant's schema, made by the target

const TARGET_TABLE = "tenant_default.bench";

function benchTarget(mode: "insert" | "upsert") {
  const types: Record<(typeof CSV_COLUMNS)[number], string> = {
    id: "bigint",
    quantity: "integer",
    price: "numeric",
    ordered_on: "date",
    updated_at: "timestamptz",
    active: "boolean",
    name: "text",
    code: "text",
    comment: "text",
    description: "text",
    note: "text",
  };
  return {
    table: "bench",
    mode,
    key: ["id"],
    columns: CSV_COLUMNS.map((name) => ({
      name,
      type: types[name],
      // The file's timestamps are JavaScript's ISO strings, 2000-01-01T00:00:00.000Z.
      ...(name === "updated_at" ? { format: "YYYY-MM-DDTHH:MI:SS.FFTZ" } : {}),
    })),
  };
}

async function putTarget(apiUrl: string, definition: unknown): Promise<void> {
  const response = await fetch(`${apiUrl}/targets/bench`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(definition),
  });
  if (!response.ok) {
    throw new Error(`PUT /targets/bench answered ${response.status}: ${await response.text()}`);
  }
}

async function targetMain(csv: string, rows: number, bytes: number, dir: string, suffix: string) {
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  let copy: Result | undefined;
  console.log("Sluice into a target, empty table (insert), beside psql \\copy into that table …");
  let mark = undo.length;
  const insert = await sluiceRun(csv, rows, bytes, dir, `${suffix}i`, {
    name: "bench",
    table: TARGET_TABLE,
    async prepare(apiUrl, database) {
      await putTarget(apiUrl, benchTarget("insert"));
      console.log("  psql \\copy into the target's table …");
      copy = await copyBaseline(csv, rows, database, dir, TARGET_TABLE);
      console.log(`  ${copy.wall.toFixed(1)} s; emptied for Sluice`);
      await sql(database, `truncate ${TARGET_TABLE}`);
    },
  });
  await undoSince(mark);
  console.log("Sluice into a target holding half the keys (upsert) …");
  mark = undo.length;
  let half = 0;
  const upsert = await sluiceRun(csv, rows, bytes, dir, `${suffix}u`, {
    name: "bench",
    table: TARGET_TABLE,
    async prepare(apiUrl, database) {
      await putTarget(apiUrl, benchTarget("upsert"));
      await copyBaseline(csv, rows, database, dir, TARGET_TABLE);
      await sql(database, `delete from ${TARGET_TABLE} where id % 2 = 0`);
      await sql(database, `vacuum analyze ${TARGET_TABLE}`);
      const [counted] = await sql<{ n: number }>(
        database,
        `select count(*)::int as n from ${TARGET_TABLE}`,
      );
      half = counted?.n ?? 0;
      console.log(`  the table holds ${fmt(half)} of the ${fmt(rows)} keys`);
    },
  });
  await undoSince(mark);
  await cleanup();
  if (!copy) throw new Error("the psql \\copy baseline did not run");
  const rate = (r: Result) => rows / r.wall;
  const baseline = copy;
  const named = (r: Result, name: string) => ({ ...r, name });
  printTable(
    [named(insert.result, "target"), named(upsert.result, "upsert"), baseline],
    rows,
    baseline,
    null,
  );
  return {
    rows,
    bytes,
    target_rows_per_s: Math.round(rate(insert.result)),
    target_seconds: round(insert.result.wall, 3),
    target_upload_seconds: round(insert.uploadSeconds, 3),
    upsert_rows_per_s: Math.round(rate(upsert.result)),
    upsert_seconds: round(upsert.result.wall, 3),
    upsert_keys_present: half,
    copy_rows_per_s: Math.round(rate(baseline)),
    copy_seconds: round(baseline.wall, 3),
    ratio_vs_copy: round(rate(insert.result) / rate(baseline), 4),
    upsert_ratio_vs_copy: round(rate(upsert.result) / rate(baseline), 4),
    api_peak_mb: round(insert.memory.api?.peakMb ?? Number.NaN, 1),
    worker_peak_mb: round(insert.memory.worker?.peakMb ?? Number.NaN, 1),
    cpu_us_per_row: {
      target: cpuPerRow(insert.result, rows),
      upsert: cpuPerRow(upsert.result, rows),
      copy: cpuPerRow(baseline, rows),
    },
    node: process.version,
  };
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const { rows, keep, target } = readOptions();
  const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-"));
  onCleanup(`remove ${dir}`, async () => {
    if (keep) console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  });
  const nodeVersion = process.version;
  const pgVersion = execFileSync("psql", ["--version"]).toString().trim();
  console.log(`Sluice pipeline benchmark: ${fmt(rows)} rows, node ${nodeVersion}, ${pgVersion}`);

  const csv = join(dir, "bench.csv");
  let start = performance.now();
  const bytes = await generateCsv(csv, rows);
  console.log(
    `CSV ${csv}: ${fmt(bytes)} bytes (${fmt(bytes / 1e6, 1)} MB, ${fmt(bytes / 1024 ** 2, 1)} MiB), ${CSV_COLUMNS.length} columns, generated in ${seconds(start).toFixed(1)} s`,
  );

  if (target) return targetMain(csv, rows, bytes, dir, suffix);

  const baselineDb = `sluice_bench_${suffix}_baseline`;
  await createDatabase(baselineDb);

  console.log("psql \\copy …");
  const copy = await copyBaseline(csv, rows, baselineDb, dir);
  console.log(`  ${copy.wall.toFixed(1)} s`);
  console.log("csv-parse …");
  const csvParse = await csvParseBaseline(csv, rows);
  console.log(`  ${csvParse.wall.toFixed(1)} s`);
  console.log("pgloader …");
  const pgloader = await pgloaderBaseline(csv, rows, baselineDb, dir);
  console.log(pgloader ? `  ${pgloader.wall.toFixed(1)} s` : "  not installed; skipped");
  await dropDatabase(baselineDb);

  console.log("Sluice (api, worker, S3 server as separate processes) …");
  // The programs run as the image runs them, compiled: TypeScript stripped at load time
  // costs each isolate over 20 MB of memory that production never spends.
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  start = performance.now();
  const sluice = await sluiceRun(csv, rows, bytes, dir, suffix);
  await cleanup();

  const results = [sluice.result, copy, ...(pgloader ? [pgloader] : []), csvParse];
  printTable(results, rows, copy, pgloader);
  const rate = (r: Result) => rows / r.wall;
  const mem = sluice.memory;
  console.log(
    `\nSluice: 202 after ${sluice.uploadSeconds.toFixed(2)} s (${fmt(rows / sluice.uploadSeconds)} rows/s, ${fmt(bytes / 1e6 / sluice.uploadSeconds, 1)} MB/s), ` +
      `all batches published by ~${sluice.publishedSeconds?.toFixed(1) ?? "?"} s, completed after ${sluice.result.wall.toFixed(2)} s;\n` +
      `  batches waiting in the queue (sampled each second): mean ${sluice.queue.mean.toFixed(1)}, max ${sluice.queue.max}\n` +
      `  rabbitmq   VmRSS ${sluice.broker.startRssMb.toFixed(0)} MB before the upload, max sampled ${sluice.broker.maxRssMb.toFixed(0)} MB`,
  );
  for (const [name, m] of Object.entries(mem)) {
    console.log(
      `  ${name.padEnd(10)} peak ${m.peakMb.toFixed(0)} MB (VmHWM), max sampled VmRSS ${m.maxRssMb.toFixed(0)} MB`,
    );
    for (const [message, count] of Object.entries(sluice.warnings[name] ?? {})) {
      console.log(`    logged ${count}× ${message}`);
    }
  }
  console.log(
    [
      "CPU seconds from /proc, between the first byte sent and the end of the load:",
      "  api (split at the 202: storing and validating the body, then re-reading and publishing it),",
      "  worker, s3_server, rabbitmq (its server process), psql, pgloader, node (this process,",
      "  csv-parse): that process alone; postgres_backends: the sessions of the run's database (COPY's",
      "  read by itself before and after, others sampled every 200 ms); postgres_all, redis: every",
      "  process of that name on the machine, background writers and other clients' work included;",
      "  (machine busy): all CPU the machine spent meanwhile, whoever for (compare with the sum above",
      "  to see how much else ran).",
    ].join("\n"),
  );

  const perRow = (r: Result) => cpuPerRow(r, rows);
  const sluiceRate = rate(sluice.result);
  return {
    rows,
    bytes,
    sluice_rows_per_s: Math.round(sluiceRate),
    sluice_seconds: round(sluice.result.wall, 3),
    copy_rows_per_s: Math.round(rate(copy)),
    copy_seconds: round(copy.wall, 3),
    ratio_vs_copy: round(sluiceRate / rate(copy), 4),
    pgloader_rows_per_s: pgloader ? Math.round(rate(pgloader)) : null,
    ratio_vs_pgloader: pgloader ? round(sluiceRate / rate(pgloader), 4) : null,
    parse_rows_per_s: Math.round(rate(csvParse)),
    upload_rows_per_s: Math.round(rows / sluice.uploadSeconds),
    upload_seconds: round(sluice.uploadSeconds, 3),
    published_seconds: sluice.publishedSeconds ? round(sluice.publishedSeconds, 1) : null,
    queue_depth_mean: round(sluice.queue.mean, 1),
    queue_depth_max: sluice.queue.max,
    api_peak_mb: round(mem.api?.peakMb ?? Number.NaN, 1),
    worker_peak_mb: round(mem.worker?.peakMb ?? Number.NaN, 1),
    s3_server_peak_mb: round(mem["s3 server"]?.peakMb ?? Number.NaN, 1),
    api_max_rss_mb: round(mem.api?.maxRssMb ?? Number.NaN, 1),
    worker_max_rss_mb: round(mem.worker?.maxRssMb ?? Number.NaN, 1),
    rabbitmq_start_rss_mb: round(sluice.broker.startRssMb, 1),
    rabbitmq_max_rss_mb: round(sluice.broker.maxRssMb, 1),
    machine_busy_cpu_s: Object.fromEntries(results.map((r) => [r.key, round(r.machine, 2)])),
    warnings: sluice.warnings,
    cpu_us_per_row: {
      sluice: perRow(sluice.result),
      copy: perRow(copy),
      pgloader: pgloader ? perRow(pgloader) : null,
      csv_parse: perRow(csvParse),
    },
    node: nodeVersion,
  };
}

try {
  const summary = await main();
  console.log(JSON.stringify(summary));
} catch (err) {
  // After Ctrl-C the run fails as its programs stop; the signal handler finishes the exit.
  if (interrupted) await new Promise(() => undefined);
  console.error(`\nbenchmark failed: ${(err as Error).stack ?? err}`);
  for (const { name, output } of started) {
    if (output.tail.length > 0)
      console.error(`\nlast lines of the ${name}:\n${output.tail.slice(-10).join("\n")}`);
  }
  await cleanup();
  process.exit(1);
}
