// One shape for every program: each of src/api, src/worker and src/controller exports a
// Program whose start() takes a ProgramRuntime and gives back a RunningProgram. A program's own
// main.ts, `npm start` (all of them in one process) and the tests start them all this way.
import type { Config } from "../config.ts";
import type { Faults } from "../faults.ts";
import type { Logger } from "../logger.ts";
import { openRuntime, type Runtime, type RuntimeNeeds } from "./runtime.ts";
import type { Shutdown } from "./shutdown.ts";

export type ProgramName = "api" | "worker" | "controller";

/** The connections, opened before any program starts, and what else a program starts with. */
export type ProgramRuntime = Runtime &
  Readonly<{
    config: Config;
    log: Logger;
    faults: Faults;
    /** Where a program adds its steps; the connections close after every program's. */
    shutdown: Shutdown;
    /** The environment the process started with, for what the configuration does not hold. */
    env: Readonly<Record<string, string | undefined>>;
    /** The interface its servers listen on; every interface unless given. */
    host?: string;
  }>;

export type RunningProgram = Readonly<{
  /** Where its HTTP server answers: the api, or /healthz, /readyz and /metrics. */
  url: string;
  /** Runs the program's own shutdown steps; those of the whole runtime run them too. */
  stop(): Promise<void>;
}>;

export type Program = Readonly<{
  name: ProgramName;
  /** What the runtime opens for it besides PostgreSQL, Redis and RabbitMQ. */
  needs: RuntimeNeeds;
  /** Creates its metrics, serves, adds its shutdown steps and starts. */
  start(runtime: ProgramRuntime): Promise<RunningProgram>;
}>;

/** Opens the connections `programs` need; they close in the shutdown's last phase. */
export async function openProgramRuntime(
  programs: readonly Pick<Program, "needs">[],
  base: Omit<ProgramRuntime, keyof Runtime>,
): Promise<ProgramRuntime> {
  const runtime = await openRuntime(base.config, base.log, {
    bucket: programs.some((program) => program.needs.bucket),
  });
  base.shutdown.add("close", "connections", runtime.close);
  return { ...runtime, ...base };
}

/**
 * Starts each program in turn on one runtime, each with its own part of the shutdown and its
 * own logger: its steps run phase by phase with the others', in the order of `programs`.
 */
export async function startPrograms(
  runtime: ProgramRuntime,
  programs: readonly Program[],
  logOf: (name: ProgramName) => Logger,
): Promise<RunningProgram[]> {
  const running: RunningProgram[] = [];
  for (const program of programs) {
    running.push(
      await program.start({
        ...runtime,
        log: logOf(program.name),
        shutdown: runtime.shutdown.part(),
      }),
    );
  }
  return running;
}
