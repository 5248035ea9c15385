// The baselines Sluice is measured against, on the same file: psql \copy into a table,
// csv-parse reading the file in this process, and pgloader when it is installed.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { parse } from "csv-parse";
import pg from "pg";
import { track } from "../test/support/program.ts";
import { CSV_COLUMNS, tableDdl } from "./generate-csv.ts";
import { backendTracker, machineBusy, machineCpu, parseStatCpu } from "./proc-stats.ts";
import { type Result, seconds } from "./report.ts";

export const PG = "postgres://postgres@127.0.0.1:5432";
const SAMPLE_MS = 200;

export async function sql<T = Record<string, unknown>>(
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

/** Flushes dirty pages now, so that no checkpoint left by one step lands in the next. */
export const checkpoint = () => sql("postgres", "checkpoint");

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
  track(child);
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
  if (code !== 0)
    throw new Error(`${command} failed (exit ${code}): ${(stderr || stdout).slice(-2_000)}`);
  const statLine = /^@@cpu (.*)$/m.exec(stdout)?.[1];
  if (!statLine) throw new Error(`${command}: no CPU reading`);
  return { wall, cpu: parseStatCpu(statLine).children, stdout };
}

async function checkLoaded(
  tool: string,
  database: string,
  table: string,
  rows: number,
  output = "",
): Promise<void> {
  const [{ count }] = (await sql<{ count: number }>(
    database,
    `select count(*)::int as count from ${table}`,
  )) as [{ count: number }];
  if (count !== rows) {
    throw new Error(`${tool} loaded ${count} rows, expected ${rows}${output && `:\n${output}`}`);
  }
}

/** A load by an outside command: its CPU, its PostgreSQL sessions', all PostgreSQL's. */
const loadResult = (
  [key, name, command]: [string, string, string],
  run: { wall: number; cpu: number },
  cpu: { backends: number; postgres: number; machine: number },
): Result => ({
  key,
  name,
  wall: run.wall,
  programs: [
    { name: command, cpu: run.cpu },
    { name: "postgres_backends", cpu: cpu.backends },
    { name: "postgres_all", cpu: cpu.postgres },
  ],
  machine: cpu.machine,
});

export async function copyBaseline(
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
  await checkLoaded("psql \\copy", database, table, rows);
  const backends = (after ?? 0) - (before ?? 0);
  return loadResult(["copy", "psql \\copy", "psql"], run, { backends, postgres, machine });
}

export async function csvParseBaseline(csv: string, rows: number): Promise<Result> {
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

export async function pgloaderBaseline(
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
  await checkLoaded("pgloader", database, "bench_pgloader", rows, run.stdout.slice(-3_000));
  return loadResult(["pgloader", "pgloader", "pgloader"], run, {
    backends: backends.seconds(),
    postgres,
    machine,
  });
}
