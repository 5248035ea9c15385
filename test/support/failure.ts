// The error a test expects an attempt to fail with, for the assertions that follow; an attempt
// that succeeds fails the test.
import assert from "node:assert/strict";

/** What `attempt` fails with; it must fail. */
export const failure = (attempt: () => Promise<unknown>): Promise<unknown> =>
  Promise.resolve()
    .then(attempt)
    .then(
      () => assert.fail("expected a failure"),
      (err: unknown) => err,
    );
