// Sluice as it runs in production, as separate processes (api, workers, S3 server) against the
// machine's PostgreSQL, Redis and RabbitMQ, each run in a world of its own: for the fault
// suite, which does faults to each, and the benchmark, which measures each. Readiness, logs,
// clean-up and the check that every row landed once are here, once.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isReady, postCsv } from "./http.ts";
import {
  freePort,
  type Program,
  spawnProgram,
  startProgram,
  waitFor,
  waitReady,
} from "./program.ts";
import { freshEnv, listBatchObjects, type TestEnv } from "./test-env.ts";

/** An S3 server that can be taken down and brought back on the same port and data. */
export class S3Process {
  readonly endpoint: string;
  /** The server running now, if any. */
  program: Program | undefined;
  private readonly port: number;
  private readonly directory: string;
  private readonly ownDirectory: boolean;

  private constructor(port: number, directory: string, ownDirectory: boolean) {
    this.port = port;
    this.directory = directory;
    this.ownDirectory = ownDirectory;
    this.endpoint = `http://127.0.0.1:${port}`;
  }

  /** Its data in `directory` (the caller's), else in a temporary folder removed at the end. */
  static async start(directory?: string): Promise<S3Process> {
    const dir = directory ?? (await mkdtemp(join(tmpdir(), "sluice-s3-")));
    const s3 = new S3Process(await freePort(), dir, directory === undefined);
    await s3.up();
    return s3;
  }

  async up(): Promise<void> {
    const program = startProgram(
      "scripts/local-s3.ts",
      {},
      { name: "s3 server", args: [String(this.port), this.directory], inheritEnv: true },
    );
    this.program = program;
    await program.line("the S3 server to be ready", (line) => line.startsWith("ready "));
  }

  async down(): Promise<void> {
    const program = this.program;
    this.program = undefined;
    await program?.kill();
  }

  async destroy(): Promise<void> {
    await this.down();
    if (this.ownDirectory) await rm(this.directory, { recursive: true, force: true });
  }
}

export type Worker = Program & { /** Its /metrics and /readyz. */ opsUrl: string };

export type ClusterOptions = {
  /** Names the run's database, namespace and bucket: `sluice_<prefix>_…`, `<prefix>-…`. */
  prefix?: string;
  /** The programs compiled from dist/, as the image runs them. */
  compiled?: boolean;
  /** Where the S3 server keeps its data (the caller's to remove). */
  s3Directory?: string;
};

/** One run's world (database, queues, keys, bucket) and the processes of Sluice on it. */
export class Cluster {
  /** The programs running now. */
  readonly programs = new Set<Program>();
  /** Every program this cluster ran, for the logs of a failed run. */
  readonly started: Program[] = [];
  private readonly workers = new Set<Worker>();
  readonly test: TestEnv;
  readonly s3: S3Process;
  readonly apiUrl: string;
  private readonly compiled: boolean;

  private constructor(test: TestEnv, s3: S3Process, compiled: boolean) {
    this.test = test;
    this.s3 = s3;
    this.compiled = compiled;
    this.apiUrl = `http://127.0.0.1:${test.env.PORT}`;
  }

  /** `env` for every program it starts, over the defaults of a fresh world. */
  static async create(
    env: Record<string, string> = {},
    options: ClusterOptions = {},
  ): Promise<Cluster> {
    const s3 = await S3Process.start(options.s3Directory);
    try {
      const test = await freshEnv(
        s3.endpoint,
        { LOG_LEVEL: "warn", PORT: String(await freePort()), ...env },
        options.prefix,
      );
      return new Cluster(test, s3, options.compiled ?? false);
    } catch (err) {
      await s3.destroy();
      throw err;
    }
  }

  /** The ops servers of the workers running now. */
  workerOpsUrls(): string[] {
    return [...this.workers].filter((w) => this.programs.has(w)).map((w) => w.opsUrl);
  }

  /** True when no worker this cluster started has stopped, so their counts are all there. */
  everyWorkerLives(): boolean {
    return [...this.workers].every((w) => this.programs.has(w));
  }

  /** Batches and rows landed in PostgreSQL by now. */
  async landedNow(id: string): Promise<{ batches: number; rows: number }> {
    const [landed] = await this.query(
      "select count(*)::int as batches, coalesce(sum(rows), 0)::int as rows from upload_batches where upload_id = $1",
      [id],
    );
    return landed;
  }

  private spawn(program: "api" | "worker", env: Record<string, string>): Program {
    const running = spawnProgram(
      program,
      { ...this.test.env, ...env },
      { compiled: this.compiled },
    );
    this.started.push(running);
    this.programs.add(running);
    running.child.once("exit", () => this.programs.delete(running));
    return running;
  }

  async startApi(env: Record<string, string> = {}): Promise<Program> {
    const api = this.spawn("api", env);
    await waitReady(api, this.apiUrl);
    return api;
  }

  async startWorker(env: Record<string, string> = {}): Promise<Worker> {
    const port = await freePort();
    const worker = Object.assign(this.spawn("worker", { WORKER_PORT: String(port), ...env }), {
      opsUrl: `http://127.0.0.1:${port}`,
    });
    this.workers.add(worker);
    await waitReady(worker, worker.opsUrl);
    return worker;
  }

  /** Sends a CSV file (see postCsv) to POST /uploads; the new upload's id. */
  async upload(csv: Parameters<typeof postCsv>[1], query = ""): Promise<{ id: string; body: any }> {
    const response = await postCsv(`${this.apiUrl}/uploads${query}`, csv).catch((err) => {
      throw new Error(`upload failed (${err.cause?.message ?? err.message})\n${this.logs()}`);
    });
    assert.equal(response.status, 202, response.text);
    return { id: response.body.id, body: response.body };
  }

  /** The last lines of every program this cluster ran. */
  logs(lines = 40): string {
    return [...this.started, ...(this.s3.program ? [this.s3.program] : [])]
      .map(
        (p) =>
          `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode})\n${p.lines.slice(-lines).join("\n")}`,
      )
      .join("\n");
  }

  /** Fails when a program it started has exited, with that program's last lines. */
  assertRunning(): void {
    for (const program of this.programs) {
      const exited = program.exited();
      if (exited) throw exited;
    }
  }

  /** Queries PostgreSQL, riding out a restart of it. */
  async query(text: string, values: unknown[]): Promise<any[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.test.sql.query(text, values)).rows;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async waitForStatus(id: string, status: string, timeoutMs = 60_000): Promise<void> {
    try {
      await waitFor(
        `upload ${id} to become ${status}`,
        async () => {
          const rows = await this.query("select status from uploads where id = $1", [id]);
          return rows[0]?.status === status;
        },
        timeoutMs,
      );
    } catch (err) {
      const rows = await this.query("select * from uploads where id = $1", [id]);
      throw new Error(
        `${(err as Error).message}\nupload: ${JSON.stringify(rows[0])}\n${this.logs()}`,
      );
    }
  }

  /**
   * Stops every program (SIGKILL; with `graceMs`, SIGTERM first and SIGKILL after that
   * long), then removes the world and the S3 server's data.
   */
  async stop(graceMs?: number): Promise<void> {
    await Promise.all(
      [...this.programs].map((p) => (graceMs === undefined ? p.kill() : p.stop(graceMs))),
    );
    await this.s3.destroy();
    await this.test.cleanup();
  }
}

/**
 * Exactly once, counted: `rows` rows landed for the upload, each once (in upload_rows, or in
 * a target's `table` by its key `id`), numbered 1 to `rows`, and one S3 object per batch.
 * Throws naming every difference; returns the number of objects.
 */
export async function checkLandedOnce(
  cluster: Cluster,
  id: string,
  rows: number,
  table?: string,
): Promise<{ objects: number }> {
  const [landed] = (await cluster.query(
    table
      ? `select count(*)::int as total, count(distinct id)::int as distinct,
            min(id)::int as min, max(id)::int as max from ${table}`
      : `select count(*)::int as total, count(distinct row_number)::int as distinct,
            min(row_number)::int as min, max(row_number)::int as max
         from upload_rows where upload_id = $1`,
    table ? [] : [id],
  )) as [{ total: number; distinct: number; min: number; max: number }];
  const objects = (await listBatchObjects(cluster.test, id)).length;
  const batches = Math.ceil(rows / cluster.test.config.limits.batchSize);
  const problems = [
    landed.total !== rows && `PostgreSQL holds ${landed.total} rows, expected ${rows}`,
    landed.distinct !== rows &&
      `PostgreSQL holds ${landed.distinct} distinct rows, expected ${rows}`,
    (landed.min !== 1 || landed.max !== rows) &&
      `row numbers run ${landed.min}..${landed.max}, expected 1..${rows}`,
    objects !== batches && `S3 holds ${objects} objects, expected ${batches}`,
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`Sluice lost or repeated data: ${problems.join("; ")}`);
  return { objects };
}

/** Whether each worker of the cluster is ready now. */
export const workersReady = (cluster: Cluster): Promise<boolean[]> =>
  Promise.all(cluster.workerOpsUrls().map(isReady));
