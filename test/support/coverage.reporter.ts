// Node's spec reporter, with the coverage table printed before the run's closing summary
// rather than after it, so a log still ends with `ℹ tests N`, `ℹ pass N`, `ℹ fail N`.
import { Readable } from "node:stream";
import type { TestEvent } from "node:test/reporters";
import { spec } from "node:test/reporters";

/** Holds the top-level diagnostics (the summary) back until the coverage report has passed. */
async function* coverageFirst(source: AsyncIterable<TestEvent>): AsyncGenerator<TestEvent> {
  let held: TestEvent[] = [];
  for await (const event of source) {
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
  yield* Readable.from(coverageFirst(source)).pipe(new spec());
}
