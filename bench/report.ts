// What a benchmark run measured, and how it is printed: the table of wall time, rows per
// second and CPU per program for each pipeline, and the lines about Sluice's own run.

export type ProgramCpu = { name: string; cpu: number };
/** `machine`: CPU seconds the whole machine was busy meanwhile, whoever for. */
export type Result = {
  key: string;
  name: string;
  wall: number;
  programs: ProgramCpu[];
  machine: number;
};

export type SluiceRun = {
  result: Result;
  uploadSeconds: number;
  publishedSeconds: number | undefined;
  queue: { max: number; mean: number };
  memory: Record<string, { peakMb: number; maxRssMb: number }>;
  /** RabbitMQ's server process: resident memory before the upload and the most sampled since. */
  broker: { startRssMb: number; maxRssMb: number };
  /** Per program, each warning or error it logged and how many times. */
  warnings: Record<string, Record<string, number>>;
};

export const seconds = (from: number) => (performance.now() - from) / 1000;
export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const round = (n: number, digits: number) => Number(n.toFixed(digits));

export const cpuPerRow = (r: Result, rows: number) =>
  Object.fromEntries(r.programs.map((p) => [p.name.trim(), round((p.cpu / rows) * 1e6, 2)]));

/** Each warning or error among a program's JSON log lines, with how many times it came. */
export function warningsOf(lines: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const level = /"level":"(warn|error|fatal)"/.exec(line)?.[1];
    if (!level) continue;
    const message = `${level}: ${/"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line.slice(0, 200)}`;
    counts[message] = (counts[message] ?? 0) + 1;
  }
  return counts;
}

export function printTable(
  results: Result[],
  rows: number,
  copy: Result,
  pgloader: Result | null,
): void {
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

/** Sluice's own lines after the table: upload speed, queue depth, memory, what it logged. */
export function printSluiceRun(sluice: SluiceRun, rows: number, bytes: number): void {
  console.log(
    `\nSluice: 202 after ${sluice.uploadSeconds.toFixed(2)} s (${fmt(rows / sluice.uploadSeconds)} rows/s, ${fmt(bytes / 1e6 / sluice.uploadSeconds, 1)} MB/s), ` +
      `all batches published by ~${sluice.publishedSeconds?.toFixed(1) ?? "?"} s, completed after ${sluice.result.wall.toFixed(2)} s;\n` +
      `  batches waiting in the queue (sampled each second): mean ${sluice.queue.mean.toFixed(1)}, max ${sluice.queue.max}\n` +
      `  rabbitmq   VmRSS ${sluice.broker.startRssMb.toFixed(0)} MB before the upload, max sampled ${sluice.broker.maxRssMb.toFixed(0)} MB`,
  );
  for (const [name, m] of Object.entries(sluice.memory)) {
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
}
