// Ordered, idempotent, bounded shutdown: stop taking work, finish what is in flight, then
// close the connections, each step even if an earlier one failed.
import type { Logger } from "../logger.ts";

/** Stop taking work, then finish what is in flight, then close the connections. */
export type Phase = "stop" | "drain" | "close";
const PHASES: Phase[] = ["stop", "drain", "close"];

type Step = () => Promise<unknown> | unknown;

export type Shutdown = Readonly<{
  /**
   * Steps run phase by phase: within "stop" and "drain" in the order they were added, within
   * "close" in the reverse order, so that what was opened first is closed last.
   */
  add(phase: Phase, name: string, step: Step): void;
  run(reason: string): Promise<void>;
  /**
   * The shutdown of one part of the process, such as one of the programs running in it: its
   * steps run with all the others when this shutdown runs, or on their own, earlier, when the
   * part's does; each step runs once.
   */
  part(): Shutdown;
}>;

export function createShutdown(log: Logger, deadlineMs: number, whole?: Shutdown): Shutdown {
  const steps: Array<{ phase: Phase; name: string; step: Step }> = [];
  let running: Promise<void> | undefined;

  async function runSteps(reason: string): Promise<void> {
    log.info({ reason }, "shutting down");
    const ordered = PHASES.flatMap((phase) => {
      const inPhase = steps.filter((s) => s.phase === phase);
      return phase === "close" ? inPhase.reverse() : inPhase;
    });
    for (const { name, step } of ordered) {
      try {
        await step();
      } catch (err) {
        log.warn({ step: name, err: (err as Error).message }, "shutdown step failed");
      }
    }
  }

  const shutdown: Shutdown = {
    add: (phase, name, step) => {
      let ran: Promise<unknown> | undefined;
      const once = whole ? () => (ran ??= Promise.resolve().then(step)) : step;
      steps.push({ phase, name, step: once });
      whole?.add(phase, name, once);
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
    part: () => createShutdown(log, deadlineMs, shutdown),
  };
  return shutdown;
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
