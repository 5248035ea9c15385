// What every main.ts does the same way: read the environment (and .env), make the logger,
// order the shutdown, and turn start-up failures into one clear message and a non-zero exit.
import { existsSync } from "node:fs";
import { type Config, loadConfig } from "../config.ts";
import { type Faults, parseFaults } from "../faults.ts";
import { createLogger, type Logger } from "../logger.ts";
import { startLocalS3 } from "../storage/local-s3.ts";
import { openProgramRuntime, type Program, startPrograms } from "./program.ts";
import { DependencyError } from "./services.ts";
import { createShutdown, exitOnSignals, type Shutdown } from "./shutdown.ts";

export type MainContext = Readonly<{
  config: Config;
  log: Logger;
  shutdown: Shutdown;
  faults: Faults;
}>;

/** Programs that serve no uploads, and so never read API_KEYS. Any other program needs keys. */
const WITHOUT_UPLOADS = new Set(["worker", "controller", "migrate"]);

export function runMain(program: string, start: (context: MainContext) => Promise<void>): void {
  if (existsSync(".env")) process.loadEnvFile(".env");
  let config: Config;
  let faults: Faults;
  try {
    config = loadConfig(process.env, { needsApiKeys: !WITHOUT_UPLOADS.has(program) });
    faults = parseFaults(process.env.SLUICE_FAULT, config.env);
  } catch (err) {
    console.error(`sluice ${program}: ${(err as Error).message}`);
    process.exit(1);
  }
  const log = createLogger(program, config.logLevel);
  const shutdown = createShutdown(log, config.shutdownTimeoutMs);
  exitOnSignals(shutdown, log);
  start({ config, log, shutdown, faults }).catch(async (err: unknown) => {
    if (err instanceof DependencyError) {
      log.fatal(err.message);
      console.error(`sluice ${program}: ${err.message}`);
    } else {
      log.fatal({ err }, "could not start");
    }
    await shutdown.run("start-up failed");
    process.exit(1);
  });
}

/**
 * Runs `programs` in this process on one runtime, which opens every connection they need and,
 * outside production, the local S3-compatible server when one of them needs the bucket.
 */
export function runPrograms(name: string, programs: readonly Program[]): void {
  runMain(name, async ({ config, log, shutdown, faults }) => {
    const { endpoint, credentials } = config.s3;
    if (
      programs.some((p) => p.needs.bucket) &&
      config.env !== "production" &&
      endpoint &&
      credentials
    ) {
      const localS3 = await startLocalS3(endpoint, credentials, ".data/s3", log);
      if (localS3) shutdown.add("close", "local S3", localS3.close);
    }
    const runtime = await openProgramRuntime(programs, {
      config,
      log,
      faults,
      shutdown,
      env: process.env,
    });
    const alone = programs.length === 1;
    const running = await startPrograms(runtime, programs, (program) =>
      alone ? log : createLogger(program, config.logLevel),
    );
    if (!alone) {
      const urls = Object.fromEntries(programs.map((p, i) => [p.name, running[i]?.url]));
      log.info(urls, "sluice running");
    }
  });
}
