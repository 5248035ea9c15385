// Stops and starts the machine's own services for the fault cases, and makes sure they are
// running again afterwards, even when a case fails or the suite is interrupted.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function succeeds(command: string, args: string[]): boolean {
  try {
    run(command, args);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

const pgVersion = () => readdirSync("/etc/postgresql")[0] as string;
const rabbitUp = () => succeeds("rabbitmq-diagnostics", ["-q", "check_port_connectivity"]);
const postgresUp = () => succeeds("pg_isready", ["-h", "127.0.0.1", "-p", "5432", "-q"]);
const redisUp = () => succeeds("redis-cli", ["-h", "127.0.0.1", "ping"]);

export const rabbitmq = {
  stopApp: () => run("rabbitmqctl", ["-q", "stop_app"]),
  async startApp() {
    run("rabbitmqctl", ["-q", "start_app"]);
    await until("RabbitMQ to come back", rabbitUp);
  },
  closeAllConnections: () =>
    run("rabbitmqctl", ["-q", "close_all_connections", "fault: closed by the broker"]),
};

export const postgres = {
  async restartImmediately() {
    run("pg_ctlcluster", [
      "--skip-systemctl-redirect",
      pgVersion(),
      "main",
      "restart",
      "-m",
      "immediate",
    ]);
    await until("PostgreSQL to come back", postgresUp);
  },
};

export const redis = {
  async flushAndRestart() {
    run("redis-cli", ["-h", "127.0.0.1", "flushall"]);
    succeeds("redis-cli", ["-h", "127.0.0.1", "shutdown", "nosave"]);
    await until("Redis to stop", () => !redisUp());
    startRedis();
    await until("Redis to come back", redisUp);
  },
};

function startRedis(): void {
  run("redis-server", [
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
  ]);
}

/** Starts whichever of the services does not answer. */
export async function ensureServicesUp(): Promise<void> {
  if (!rabbitUp()) {
    if (!succeeds("rabbitmqctl", ["-q", "start_app"])) succeeds("rabbitmq-server", ["-detached"]);
    await until("RabbitMQ to come back", rabbitUp, 120_000);
  }
  if (!postgresUp()) {
    succeeds("pg_ctlcluster", ["--skip-systemctl-redirect", pgVersion(), "main", "start"]);
    await until("PostgreSQL to come back", postgresUp);
  }
  if (!redisUp()) {
    startRedis();
    await until("Redis to come back", redisUp);
  }
}

/** An interrupted suite still brings the services back before it exits. */
export function restoreServicesOnInterrupt(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void ensureServicesUp().finally(() => process.exit(130));
    });
  }
}
