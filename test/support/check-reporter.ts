// A node:test reporter printing one line per check: its name, pass or fail, and its figure
// (what the test gave t.diagnostic), with the failure's message under a failed check.
// Usage: node --test --test-reporter=./test/support/check-reporter.ts ...
import type { TestEvent } from "node:test/reporters";
import { missing, observe, type Tallies } from "./file-tallies.ts";

type Located = { file?: string; line?: number; column?: number };
const where = (data: Located) => `${data.file}:${data.line}:${data.column}`;

type Result = {
  at: string;
  name: string;
  ok: boolean;
  /** The reason a skipped check gave. */
  skip?: string;
  figures: string[];
  error?: unknown;
};

function render(result: Result): string {
  if (result.skip !== undefined) return `${result.name}  skip  ${result.skip}\n`;
  const figure = result.figures.join("; ") || "-";
  let text = `${result.name}  ${result.ok ? "pass" : "FAIL"}  ${figure}\n`;
  if (!result.ok) {
    const error = result.error as Error | undefined;
    const cause = (error?.cause as Error | undefined) ?? error;
    text += `    ${String(cause?.message ?? cause)
      .split("\n")
      .join("\n    ")}\n`;
  }
  return text;
}

export default async function* checkReporter(
  source: AsyncIterable<TestEvent>,
): AsyncGenerator<string> {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  // A test's diagnostics arrive just after its result, so each line waits for them.
  let pending: Result | undefined;
  const tallies: Tallies = new Map();
  for await (const event of source) {
    observe(event, tallies);
    if (event.type === "test:diagnostic" && pending && where(event.data) === pending.at) {
      pending.figures.push(event.data.message);
      continue;
    }
    if (pending) yield render(pending);
    pending = undefined;
    if (event.type === "test:pass" || event.type === "test:fail") {
      const { data } = event;
      if (data.details.type === "suite") continue;
      const ok = event.type === "test:pass";
      if (data.skip !== undefined) skipped++;
      else if (ok) passed++;
      else failed++;
      pending = {
        at: where(data),
        name: data.name,
        ok,
        skip:
          data.skip === undefined ? undefined : String(data.skip === true ? "skipped" : data.skip),
        figures: [],
        error: (data.details as { error?: unknown }).error,
      };
    } else if (event.type === "test:stderr") {
      yield event.data.message;
    }
  }
  if (pending) yield render(pending);
  yield `${passed} passed, ${failed} failed, ${skipped} skipped\n`;
  const problems = missing(tallies);
  if (problems.length === 0) return;
  // The runner sets the exit code only on a failure; this makes the lost results one.
  process.exitCode = 1;
  yield `FAIL  the results of ${problems.length} test file(s) did not all arrive:\n`;
  for (const problem of problems) yield `    ${problem}\n`;
}
