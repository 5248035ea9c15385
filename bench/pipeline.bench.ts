// The whole pipeline on one generated file, side by side with psql \copy, csv-parse and
// pgloader: time, rows per second, CPU per program and the memory of Sluice's processes.
// Usage: npm run bench -- [--rows N] [--scale K] [--keep] [--target]
//        (or BENCH_ROWS, BENCH_SCALE, BENCH_KEEP=1, BENCH_TARGET=1)
// --target loads into a target (a typed table with a primary key) instead of upload_rows,
// beside psql \copy into that same table, then upserts into it holding half the keys.
// It builds dist/ (npm run build) and runs the compiled programs, as the image does.
// The last line printed is one JSON object with every figure.

import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { adminQuery, dropDatabase } from "../test/support/test-env.ts";
import { copyBaseline, csvParseBaseline, pgloaderBaseline } from "./baselines.ts";
import { cleanup, isInterrupted, onCleanup } from "./cleanup.ts";
import { CSV_COLUMNS, generateCsv } from "./generate-csv.ts";
import {
  cpuPerRow,
  fmt,
  printSluiceRun,
  printTable,
  type Result,
  round,
  seconds,
} from "./report.ts";
import { sluiceRun } from "./sluice-run.ts";
import { targetRuns } from "./target-run.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// The programs run as the image runs them, compiled: TypeScript stripped at load time
// costs each isolate over 20 MB of memory that production never spends.
const build = () =>
  execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });

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

async function main(): Promise<Record<string, unknown>> {
  const { rows, keep, target } = readOptions();
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-"));
  onCleanup(`remove ${dir}`, async () => {
    if (keep) console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  });
  const nodeVersion = process.version;
  const pgVersion = execFileSync("psql", ["--version"]).toString().trim();
  console.log(`Sluice pipeline benchmark: ${fmt(rows)} rows, node ${nodeVersion}, ${pgVersion}`);

  const csv = join(dir, "bench.csv");
  const start = performance.now();
  const bytes = await generateCsv(csv, rows);
  console.log(
    `CSV ${csv}: ${fmt(bytes)} bytes (${fmt(bytes / 1e6, 1)} MB, ${fmt(bytes / 1024 ** 2, 1)} MiB), ${CSV_COLUMNS.length} columns, generated in ${seconds(start).toFixed(1)} s`,
  );

  if (target) {
    build();
    const summary = await targetRuns(csv, rows, bytes, dir);
    await cleanup();
    return summary;
  }

  const baselineDb = `sluice_bench_${randomUUID().replaceAll("-", "").slice(0, 12)}_baseline`;
  await adminQuery(`create database ${baselineDb}`);
  onCleanup(`drop database ${baselineDb}`, () => dropDatabase(baselineDb));

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
  build();
  const sluice = await sluiceRun(csv, rows, bytes, dir);
  await cleanup();

  const results = [sluice.result, copy, ...(pgloader ? [pgloader] : []), csvParse];
  printTable(results, rows, copy, pgloader);
  printSluiceRun(sluice, rows, bytes);
  const rate = (r: Result) => rows / r.wall;
  const mem = sluice.memory;

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
  if (isInterrupted()) await new Promise(() => undefined);
  console.error(`\nbenchmark failed: ${(err as Error).stack ?? err}`);
  await cleanup();
  process.exit(1);
}
