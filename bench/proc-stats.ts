// CPU time and memory of processes, read from Linux's /proc.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** The fields of a /proc/<pid>/stat line after the command name, which may hold spaces. */
function statFields(line: string): string[] {
  return line.slice(line.lastIndexOf(")") + 2).split(" ");
}

export type Cpu = { self: number; children: number };

/** Seconds of CPU in a /proc/<pid>/stat line: its own (utime+stime) and its reaped children's. */
export function parseStatCpu(line: string): Cpu {
  const f = statFields(line.trim());
  // After the name: state is field 3 of the stat line, so utime (14) is index 11.
  const tick = (i: number) => Number(f[i]) / CLOCK_TICKS;
  return { self: tick(11) + tick(12), children: tick(13) + tick(14) };
}

/** Seconds of CPU a live process has used so far; undefined once it is gone. */
export function processCpu(pid: number): number | undefined {
  try {
    return parseStatCpu(readFileSync(`/proc/${pid}/stat`, "utf8")).self;
  } catch {
    return undefined;
  }
}

/**
 * Seconds of CPU used so far by every process named `name`, with the children they have
 * reaped: a PostgreSQL backend that ends is counted through the postmaster, so two readings
 * bracket everything those programs did in between, whoever it was for.
 */
export function machineCpu(name: string): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const line = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (line.slice(line.indexOf("(") + 1, line.lastIndexOf(")")) !== name) continue;
      const cpu = parseStatCpu(line);
      total += cpu.self + cpu.children;
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return total;
}

export type Memory = { rssMb: number; peakMb: number };

/** Resident memory now (VmRSS) and its high-water mark (VmHWM); undefined once it is gone. */
export function processMemory(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/** Seconds of CPU the whole machine has spent busy (all but idle and iowait), all cores. */
export function machineBusy(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]?.trim().split(/\s+/) ?? [];
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
    CLOCK_TICKS
  );
}

/** The pid of the first process whose command line contains `text`, if any. */
export function findProcess(name: string, text: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      if (comm !== name) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").includes(text)) {
        return Number(entry);
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/**
 * The CPU of the PostgreSQL backends serving one database, found by their process title
 * ("postgres: 15/main: user database host(port) state") and sampled while they live: what a
 * backend did before the tracker started is left out, and one that ends between two
 * samples loses its last interval.
 */
export function backendTracker(database: string): {
  sample(): void;
  /** Leaves out a backend that is not the programs' own (this process's probe). */
  exclude(pid: number): void;
  seconds(): number;
} {
  const title = new RegExp(`^postgres: [^:]+: \\S+ ${database} `);
  const excluded = new Set<number>();
  const base = new Map<number, number>();
  const last = new Map<number, number>();
  const scan = (first: boolean) => {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (excluded.has(pid)) continue;
      try {
        if (!title.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) continue;
        const cpu = parseStatCpu(readFileSync(`/proc/${pid}/stat`, "utf8")).self;
        if (first) base.set(pid, cpu);
        else if (!base.has(pid)) base.set(pid, 0);
        last.set(pid, cpu);
      } catch {
        // Gone meanwhile.
      }
    }
  };
  scan(true);
  return {
    sample: () => scan(false),
    exclude: (pid) => {
      excluded.add(pid);
      base.delete(pid);
      last.delete(pid);
    },
    seconds: () => [...last].reduce((sum, [pid, cpu]) => sum + cpu - (base.get(pid) ?? 0), 0),
  };
}
