// Runs one of Sluice's main.ts files as a child process and keeps what it prints, line by line.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT } from "./stack.ts";

export type Program = Readonly<{
  child: ChildProcess;
  /** Every line printed so far, stdout and stderr apart, as printed (line breaks removed). */
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout line that satisfies `match`, waiting for it if needed. */
  line(what: string, match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves once the program has exited and its output is read. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit. */
  stop(): Promise<void>;
}>;

/**
 * Starts `node <file>` with exactly `env` (plus PATH), so that nothing from the test
 * runner's environment, or a .env file, changes what the program sees.
 */
export function startProgram(file: string, env: Record<string, string>, cwd = ROOT): Program {
  const child = spawn(process.execPath, [join(ROOT, file)], {
    cwd,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiting = new Set<() => void>();
  // "close" comes after the output streams end, so every line is in by then.
  const exit = once(child, "close").then(([code, signal]) => ({ code, signal }));
  // The raw chunks, split on \n only: a stray \r or other break inside a line must show.
  const collect = (stream: NodeJS.ReadableStream, into: string[]) =>
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
      into.push(line);
      for (const wake of waiting) wake();
    });
  collect(child.stdout as NodeJS.ReadableStream, stdout);
  collect(child.stderr as NodeJS.ReadableStream, stderr);

  return {
    child,
    stdout,
    stderr,
    exit,
    line(what, match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = stdout.find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          waiting.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiting.delete(check);
          reject(new Error(`timed out waiting for ${what}; stderr: ${stderr.join("\n")}`));
        }, timeoutMs);
        waiting.add(check);
        void exit.then(() => {
          if (!waiting.has(check)) return;
          waiting.delete(check);
          clearTimeout(timer);
          reject(new Error(`exited before ${what}; stderr: ${stderr.join("\n")}`));
        });
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exit;
    },
  };
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
