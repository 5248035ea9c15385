// Ordered, idempotent, bounded shutdown: stop taking work, finish what is in flight, then
// close the connections, each step even if an earlier one failed.
import type { Logger } from "./logger.ts";

/** Stop taking work, then finish what is in flight, then close the connections. */
export type Phase = "stop" | "drain" | "close";
const PHASES: Phase[] = ["stop", "drain", "close"];

export type Shutdown = Readonly<{
  /** Steps run phase by phase, and within a phase in the order they were added. */
  add(phase: Phase, name: string, step: () => Promise<unknown> | unknown): void;
  run(reason: string): Promise<void>;
}>;

export function createShutdown(log: Logger, deadlineMs: number): Shutdown {
  const steps: Array<{ phase: Phase; name: string; step: () => Promise<unknown> | unknown }> = [];
  let running: Promise<void> | undefined;

  async function runSteps(reason: string): Promise<void> {
    log.info({ reason }, "shutting down");
    const ordered = PHASES.flatMap((phase) => steps.filter((s) => s.phase === phase));
    for (const { name, step } of ordered) {
      try {
        await step();
      } catch (err) {
        log.warn({ step: name, err: (err as Error).message }, "shutdown step failed");
      }
    }
  }

  return {
    add: (phase, name, step) => {
      steps.push({ phase, name, step });
    },
    run(reason) {
      running ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), deadlineMs);
          timer.unref();
        });
        const outcome = await Promise.race([runSteps(reason), deadline]);
        clearTimeout(timer);
        if (outcome === "late")
          log.error({ deadlineMs }, "shutdown deadline passed; exiting anyway");
      })();
      return running;
    },
  };
}

/** SIGTERM or SIGINT shuts down; a second signal forces the exit. */
export function exitOnSignals(shutdown: Shutdown, log: Logger): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, "second signal; exiting now");
      process.exit(1);
    }
    signalled = true;
    void shutdown.run(signal).then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
