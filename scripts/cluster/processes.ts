// The cluster's programs run as detached processes; their ids are kept under RUN_DIR so
// cluster:down stops exactly what cluster:up started.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LOG_DIR, RUN_DIR } from "./paths.ts";

const pidFile = (name: string) => join(RUN_DIR, `${name}.pid`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process id of a program cluster:up started and that still runs. */
export function runningPid(name: string): number | undefined {
  if (!existsSync(pidFile(name))) return undefined;
  const pid = Number(readFileSync(pidFile(name), "utf8"));
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): number {
  mkdirSync(RUN_DIR, { recursive: true });
  mkdirSync(LOG_DIR, { recursive: true });
  const log = openSync(join(LOG_DIR, `${name}.log`), "w");
  // Its own session, so a Ctrl-C in the terminal that ran cluster:up does not reach it.
  const child = spawn(command, args, {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, ...env },
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  writeFileSync(pidFile(name), String(child.pid));
  child.unref();
  return child.pid;
}

/** SIGTERM, then SIGKILL after the grace period; true if it was running. */
export async function stopProcess(name: string, graceMs = 15_000): Promise<boolean> {
  const pid = runningPid(name);
  rmSync(pidFile(name), { force: true });
  if (pid === undefined) return false;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) process.kill(pid, "SIGKILL");
  while (alive(pid)) await sleep(50);
  return true;
}

/** Polls `ready` until it holds; fails with the program's last log lines otherwise. */
export async function waitFor(
  name: string,
  ready: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready().catch(() => false)) return;
    if (existsSync(pidFile(name)) && runningPid(name) === undefined) break;
    await sleep(250);
  }
  const logFile = join(LOG_DIR, `${name}.log`);
  const tail = existsSync(logFile)
    ? readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n")
    : "(no log)";
  throw new Error(`${name} did not become ready; the end of ${logFile}:\n${tail}`);
}
