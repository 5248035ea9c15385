// Starts a Node.js program of this checkout (one of Sluice's, the S3 server, a command line) as
// a child process and keeps what it prints, line by line: the one way the tests, the fault
// suite and the benchmark start programs. Nothing here imports node:test, so that the
// benchmark, which is no test, can use it.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { NODE_OPTIONS } from "../../src/core/program/node-options.ts";
import { isReady } from "./http.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;

export type Program = Readonly<
  Omit<Output, "line"> & {
    name: string;
    child: ChildProcess;
    /** Resolves with the first stdout line that satisfies `match`, waiting for it if needed. */
    line(what: string, match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
    /** While it runs, undefined; once it has exited, an error saying how, with its last lines. */
    exited(): Error | undefined;
    /** SIGTERM (then SIGKILL after `killAfterMs`, when given), then the exit. */
    stop(killAfterMs?: number): Promise<void>;
    /** SIGKILL, then the exit. */
    kill(): Promise<void>;
  }
>;

export type StartOptions = {
  /** How errors and reports name it; the file's name by default. */
  name?: string;
  /** Node's own flags, before the file (a program's heap limits). */
  node?: readonly string[];
  /** Arguments after the file. */
  args?: readonly string[];
  /**
   * Adds this process's environment under `env`. Without it the program sees exactly `env`
   * (plus PATH), so that nothing from the test runner's environment changes what it sees.
   */
  inheritEnv?: boolean;
  cwd?: string;
};

// Whatever ends this process (a failure, --test-force-exit, Ctrl-C) ends the programs it
// started too, so none is left running against a dropped database.
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Kills `child` when this process exits, if it still runs then. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export type Output = {
  /** Every line printed so far, stdout and stderr apart, as printed (line breaks removed). */
  stdout: string[];
  stderr: string[];
  /** Every line of both, in the order they arrived. */
  lines: string[];
  /** Resolves once the process has exited and its output is read. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Resolves with the first line (of `in`, all by default) that satisfies `match`, waiting for
   * it as long as the process runs: a loaded machine may take any time to start a program, so
   * no clock decides by default, and the test runner's timeout bounds a process that neither
   * prints the line nor exits. Rejects when it exits without the line, or after `timeoutMs`
   * if given.
   */
  line(
    what: string,
    match: (line: string) => boolean,
    options?: { in?: string[]; timeoutMs?: number },
  ): Promise<string>;
};

/** Keeps what a child process prints, line by line, and waits for lines as they come. */
export function followOutput(child: ChildProcess, name: string): Output {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const lines: string[] = [];
  const waiting = new Set<() => void>();
  // "close" comes after the output streams end, so every line is in by then.
  const exit = once(child, "close").then(([code, signal]) => ({ code, signal }));
  // The raw chunks, split on \n only: a stray \r or other break inside a line must show.
  const collect = (stream: NodeJS.ReadableStream, into: string[]) =>
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
      into.push(line);
      lines.push(line);
      for (const wake of waiting) wake();
    });
  collect(child.stdout as NodeJS.ReadableStream, stdout);
  collect(child.stderr as NodeJS.ReadableStream, stderr);
  const printed = () => `; ${name} printed:\n${lines.slice(-40).join("\n")}`;
  return {
    stdout,
    stderr,
    lines,
    exit,
    line(what, match, { in: among = lines, timeoutMs } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = among.find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          waiting.delete(check);
          resolve(found);
        };
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                waiting.delete(check);
                reject(new Error(`timed out waiting for ${what}${printed()}`));
              }, timeoutMs);
        waiting.add(check);
        void exit.then(() => {
          if (!waiting.has(check)) return;
          waiting.delete(check);
          clearTimeout(timer);
          reject(new Error(`exited before ${what}${printed()}`));
        });
        check();
      });
    },
  };
}

/** Where the run collects V8 coverage, if it does, so that the programs it starts count too. */
const coverage = (): Record<string, string> => {
  const dir = process.env.NODE_V8_COVERAGE;
  return dir ? { NODE_V8_COVERAGE: dir } : {};
};

/** Starts `node <file>`, `file` relative to the checkout's root. */
export function startProgram(
  file: string,
  env: Record<string, string>,
  options: StartOptions = {},
): Program {
  const name = options.name ?? file;
  const child = spawn(
    process.execPath,
    [...(options.node ?? []), join(ROOT, file), ...(options.args ?? [])],
    {
      cwd: options.cwd ?? ROOT,
      env: options.inheritEnv
        ? { ...process.env, ...env }
        : { PATH: process.env.PATH ?? "", ...coverage(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  track(child);
  const output = followOutput(child, name);
  const { stdout, lines, exit } = output;
  const lastLines = () => lines.slice(-40).join("\n");
  const ended = async (signal: NodeJS.Signals, killAfterMs?: number) => {
    if (running(child)) child.kill(signal);
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    await exit;
    clearTimeout(timer);
  };

  return {
    name,
    child,
    ...output,
    line: (what, match, timeoutMs) => output.line(what, match, { in: stdout, timeoutMs }),
    exited() {
      if (running(child)) return undefined;
      return new Error(
        `the ${name} exited (${child.exitCode ?? child.signalCode}):\n${lastLines()}`,
      );
    },
    stop: (killAfterMs) => ended("SIGTERM", killAfterMs),
    kill: () => ended("SIGKILL"),
  };
}

/**
 * A Sluice program as it runs in production, as a process of its own with its heap limits,
 * so that a test can kill it; compiled from dist/, as the image runs it, when told.
 */
export function spawnProgram(
  program: "api" | "worker" | "controller",
  env: Record<string, string>,
  options: { compiled?: boolean } = {},
): Program {
  const file = options.compiled ? `dist/${program}/main.js` : `src/${program}/main.ts`;
  return startProgram(file, env, {
    name: program,
    node: NODE_OPTIONS[program].split(" "),
    inheritEnv: true,
  });
}

/** Polls `probe` until it gives a value, every 100 ms, for at most `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the program's /readyz at `url` answers 2xx; fails at once if it exits first. */
export async function waitReady(program: Program, url: string): Promise<void> {
  await waitFor(`the ${program.name} to be ready at ${url}`, async () => {
    const exited = program.exited();
    if (exited) throw exited;
    return isReady(url);
  });
}

/** A port nothing listens on at the moment of asking. */
export async function freePort(): Promise<number> {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
