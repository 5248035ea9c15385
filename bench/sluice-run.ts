// One Sluice run of the benchmark, on the harness the fault suite uses: the api, a worker and
// the S3 server as processes of their own, compiled as the image runs them, in a world of
// their own; the file sent, the load followed to its end, CPU and memory read from /proc,
// and every row checked to have landed once.
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import amqp from "amqplib";
import pg from "pg";
import { queueNames } from "../src/core/broker/queue-names.ts";
import { Cluster, checkLandedOnce } from "../test/support/harness.ts";
import type { Program } from "../test/support/program.ts";
import { checkpoint } from "./baselines.ts";
import { onCleanup } from "./cleanup.ts";
import {
  backendTracker,
  findProcess,
  machineBusy,
  machineCpu,
  processCpu,
  processMemory,
} from "./proc-stats.ts";
import { fmt, type SluiceRun, seconds, warningsOf } from "./report.ts";

const POLL_MS = 250;
const SAMPLE_MS = 200;
/** A run fails when the upload makes no progress for this long. */
const STALL_MS = 180_000;

/**
 * Landing in a target instead of upload_rows: `prepare` defines it and readies its table once
 * the programs run, and the run then counts the rows in `table`.
 */
export type TargetRun = {
  name: string;
  table: string;
  prepare: (apiUrl: string, database: string) => Promise<void>;
};

/** Sluice started in a world of its own under `dir`, stopped and removed at clean-up. */
async function startSluice(dir: string): Promise<{ cluster: Cluster; programs: Program[] }> {
  const cluster = await Cluster.create(
    {
      NODE_ENV: "development",
      UPLOAD_DIR: join(dir, "uploads"),
      BATCH_SIZE: "1000",
      MAX_ATTEMPTS: "5",
      RETRY_BASE_MS: "1000",
    },
    { prefix: "bench", compiled: true, s3Directory: await mkdtemp(join(dir, "s3-")) },
  );
  onCleanup("stop Sluice and remove its database, queues and keys", () => cluster.stop(25_000));
  // One after the other: the first creates and migrates the database.
  const api = await cluster.startApi();
  const worker = await cluster.startWorker();
  return { cluster, programs: [api, worker, cluster.s3.program as Program] };
}

export async function sluiceRun(
  csv: string,
  rows: number,
  bytes: number,
  dir: string,
  target?: TargetRun,
): Promise<SluiceRun> {
  const { cluster, programs } = await startSluice(dir);
  try {
    return await measure(cluster, programs, csv, rows, bytes, target);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n\n${cluster.logs(10)}`, { cause: err });
  }
}

async function measure(
  cluster: Cluster,
  programs: Program[],
  csv: string,
  rows: number,
  bytes: number,
  target: TargetRun | undefined,
): Promise<SluiceRun> {
  const [api, worker, s3Server] = programs as [Program, Program, Program];
  const { config, database } = cluster.test;
  await target?.prepare(cluster.apiUrl, database);

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

  const cpuOf = (p: Program) => (p.child.pid ? (processCpu(p.child.pid) ?? 0) : 0);
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
  const { id, body: accepted } = await cluster.upload(
    { file: csv, bytes },
    target ? `?target=${target.name}` : "",
  );
  const uploadSeconds = seconds(start);
  const apiAt202 = cpuOf(api);
  if (accepted.rows !== rows) {
    throw new Error(`the api counted ${accepted.rows} rows, expected ${rows}`);
  }
  console.log(`  202 after ${uploadSeconds.toFixed(1)} s, upload ${id}`);

  // Once a second: how far publishing is (PostgreSQL records it as it goes) and how many
  // batches wait in the queue: a queue that fills means the worker is the slower side.
  const probe = new pg.Client({ connectionString: config.databaseUrl });
  probe.on("error", () => undefined);
  await probe.connect();
  onCleanup("close the progress probe", () => probe.end());
  const [probePid] = (await probe.query("select pg_backend_pid() as pid")).rows as [
    { pid: number },
  ];
  backends.exclude(probePid.pid);
  const amqpProbe = await amqp.connect(config.rabbitmqUrl);
  amqpProbe.on("error", () => undefined);
  onCleanup("close the queue probe", () => amqpProbe.close());
  const queueProbe = await amqpProbe.createChannel();
  const queue = queueNames(config.namespace).batches;
  let publishedSeconds: number | undefined;
  let published = 0;
  const depths: number[] = [];
  let lastProbe = 0;
  const probeProgress = async () => {
    const [row] = (
      await probe.query("select batches_published::int as n from uploads where id = $1", [id])
    ).rows as [{ n: number }];
    published = row.n;
    if (publishedSeconds === undefined && published === accepted.batches.total) {
      publishedSeconds = seconds(start);
    }
    depths.push((await queueProbe.checkQueue(queue)).messageCount);
  };

  let lastLanded = -1;
  let lastChange = performance.now();
  let lastPrint = performance.now();
  for (;;) {
    cluster.assertRunning();
    const response = await fetch(`${cluster.apiUrl}/uploads/${id}`);
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

  const { objects } = await checkLandedOnce(cluster, id, rows, target?.table);
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
    warnings: Object.fromEntries(programs.map((p) => [p.name, warningsOf(p.lines)])),
  };
}
