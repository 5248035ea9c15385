// Runs Sluice as it runs in production, as separate processes (api, workers, S3 server)
// against the machine's PostgreSQL, Redis and RabbitMQ, so faults can be done to each, and
// checks afterwards that every row landed exactly once.

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_OPTIONS } from "../../src/core/node-options.ts";
import { getJson, ROOT, type TestEnv, testEnv, track, waitFor } from "../support/stack.ts";

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An S3 server that can be taken down and brought back on the same port and data. */
export class S3Process {
  readonly endpoint: string;
  private child: ChildProcess | undefined;
  private readonly port: number;
  private readonly directory: string;

  private constructor(port: number, directory: string) {
    this.port = port;
    this.directory = directory;
    this.endpoint = `http://127.0.0.1:${port}`;
  }

  static async start(): Promise<S3Process> {
    const s3 = new S3Process(await freePort(), await mkdtemp(join(tmpdir(), "sluice-fault-s3-")));
    await s3.up();
    return s3;
  }

  async up(): Promise<void> {
    const child = track(
      spawn(
        process.execPath,
        [join(ROOT, "scripts/local-s3.ts"), String(this.port), this.directory],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      ),
    );
    this.child = child;
    const [line] = (await once(child.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
    assert.match(line.toString(), /ready/);
  }

  async down(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  }

  async destroy(): Promise<void> {
    await this.down();
    await rm(this.directory, { recursive: true, force: true });
  }
}

export type Program = {
  name: string;
  child: ChildProcess;
  output: string[];
  /** A worker's /metrics and /readyz. */
  opsUrl?: string;
};

/** One fault case's world: its own database, queues, bucket and processes. */
export class Cluster {
  readonly programs = new Set<Program>();
  /** Every program this cluster ran, for the logs of a failed case. */
  private readonly started: Program[] = [];
  readonly test: TestEnv;
  readonly s3: S3Process;
  readonly apiUrl: string;

  private constructor(test: TestEnv, s3: S3Process, apiPort: number) {
    this.test = test;
    this.s3 = s3;
    this.apiUrl = `http://127.0.0.1:${apiPort}`;
  }

  static async create(env: Record<string, string> = {}): Promise<Cluster> {
    const s3 = await S3Process.start();
    const apiPort = await freePort();
    const test = await testEnv({ AWS_ENDPOINT: s3.endpoint, PORT: String(apiPort), ...env });
    return new Cluster(test, s3, apiPort);
  }

  /** The ops servers of the workers running now. */
  workerOpsUrls(): string[] {
    return [...this.programs].flatMap((p) => (p.opsUrl ? [p.opsUrl] : []));
  }

  /** True when no worker this cluster started has stopped, so their counts are all there. */
  everyWorkerLives(): boolean {
    return this.started.every((p) => p.name !== "worker" || this.programs.has(p));
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
    const child = track(
      spawn(
        process.execPath,
        [...NODE_OPTIONS[program].split(" "), join(ROOT, "src", program, "main.ts")],
        {
          cwd: ROOT,
          env: { ...process.env, ...this.test.env, LOG_LEVEL: "warn", ...env },
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
    const running: Program = { name: program, child, output: [] };
    this.started.push(running);
    const keep = (chunk: Buffer) => {
      running.output.push(chunk.toString());
      if (running.output.length > 200) running.output.shift();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.programs.add(running);
    child.once("exit", () => this.programs.delete(running));
    return running;
  }

  async startApi(env: Record<string, string> = {}): Promise<Program> {
    const api = this.spawn("api", env);
    await waitFor("the api to be ready", async () => {
      if (api.child.exitCode !== null) throw new Error(`api exited: ${api.output.join("")}`);
      return fetch(`${this.apiUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
    });
    return api;
  }

  async startWorker(env: Record<string, string> = {}): Promise<Program> {
    const port = await freePort();
    const worker = this.spawn("worker", { WORKER_PORT: String(port), ...env });
    worker.opsUrl = `http://127.0.0.1:${port}`;
    await waitFor("the worker to be ready", async () => {
      if (worker.child.exitCode !== null)
        throw new Error(`worker exited: ${worker.output.join("")}`);
      return fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
    });
    return worker;
  }

  async upload(csv: string): Promise<string> {
    const response = await getJson(`${this.apiUrl}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: csv,
    }).catch((err) => {
      throw new Error(`upload failed (${err.cause?.message ?? err.message})\n${this.logs()}`);
    });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return response.body.id;
  }

  private logs(): string {
    return this.started
      .map(
        (p) =>
          `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode})\n${p.output.join("").slice(-4000)}`,
      )
      .join("\n");
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
      await this.untilStatus(id, status, timeoutMs);
    } catch (err) {
      const rows = await this.query("select * from uploads where id = $1", [id]);
      throw new Error(
        `${(err as Error).message}\nupload: ${JSON.stringify(rows[0])}\n${this.logs()}`,
      );
    }
  }

  private async untilStatus(id: string, status: string, timeoutMs: number): Promise<void> {
    await waitFor(
      `upload ${id} to become ${status}`,
      async () => {
        const rows = await this.query("select status from uploads where id = $1", [id]);
        return rows[0]?.status === status;
      },
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.programs].map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGKILL");
        await once(child, "exit");
      }),
    );
    await this.test.cleanup();
    await this.s3.destroy();
  }
}

/** Runs a machine command that a fault needs (stopping RabbitMQ, restarting PostgreSQL). */
export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
