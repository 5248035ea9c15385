// The benchmark's clean-up: every resource registers how to undo it; undone in reverse order,
// once, on success, failure, Ctrl-C or SIGTERM. A second signal exits at once (the programs
// it started are killed as this process exits: see test/support/program.ts).

const undo: Array<{ what: string; run: () => Promise<unknown> }> = [];
let cleaning: Promise<void> | undefined;
let interrupted = false;

export function onCleanup(what: string, run: () => Promise<unknown>): void {
  undo.push({ what, run });
}

/** Undoes, in reverse order, what was registered since `mark` (the length of `undo` then). */
async function undoSince(mark: number): Promise<void> {
  for (const step of undo.splice(mark).reverse()) {
    try {
      await step.run();
    } catch (err) {
      console.error(`clean-up: could not ${step.what}: ${(err as Error).message}`);
    }
  }
}

export function cleanup(): Promise<void> {
  cleaning ??= undoSince(0);
  return cleaning;
}

/** Runs `step`, then undoes what it registered, whether it succeeded or not. */
export async function cleanedUp<T>(step: () => Promise<T>): Promise<T> {
  const mark = undo.length;
  try {
    return await step();
  } finally {
    await undoSince(mark);
  }
}

/** True once Ctrl-C or SIGTERM has come: a run failing after it fails because of it. */
export const isInterrupted = () => interrupted;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = true;
    if (cleaning) process.exit(130);
    console.error(`\n${signal}: cleaning up (again to force)`);
    void cleanup().then(() => process.exit(130));
  });
}
