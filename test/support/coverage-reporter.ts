// Node's spec reporter, with the coverage table printed before the run's closing summary
// rather than after it, so a log still ends with `ℹ tests N`, `ℹ pass N`, `ℹ fail N`; and a
// check that every test file's results all reached the runner, which fails the run when one
// did not (file-tallies.ts).
import { Readable } from "node:stream";
import type { TestEvent } from "node:test/reporters";
import { spec } from "node:test/reporters";
import { missing, observe, type Tallies } from "./file-tallies.ts";

/** Holds the top-level diagnostics (the summary) back until the coverage report has passed. */
async function* coverageFirst(
  source: AsyncIterable<TestEvent>,
  tallies: Tallies,
): AsyncGenerator<TestEvent> {
  let held: TestEvent[] = [];
  for await (const event of source) {
    observe(event, tallies);
    if (event.type === "test:diagnostic" && event.data.nesting === 0) {
      held.push(event);
      continue;
    }
    if (event.type !== "test:coverage" && event.type !== "test:summary") {
      yield* held;
      held = [];
    }
    yield event;
  }
  yield* held;
}

export default async function* coverageReporter(
  source: AsyncIterable<TestEvent>,
): AsyncGenerator<string | Buffer> {
  const tallies: Tallies = new Map();
  yield* Readable.from(coverageFirst(source, tallies)).pipe(new spec());
  const problems = missing(tallies);
  if (problems.length === 0) return;
  // The runner sets the exit code only on a failure; this makes the lost results one.
  process.exitCode = 1;
  yield `\n✖ the results of ${problems.length} test file(s) did not all arrive; the counts above are short:\n`;
  for (const problem of problems) yield `  ${problem}\n`;
}
