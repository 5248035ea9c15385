import assert from "node:assert/strict";
import { test } from "node:test";
import { afterFailure } from "./batch-handler.ts";

test("a failed batch is retried through the delay queue of its attempt", () => {
  assert.deepEqual(afterFailure(1, 5, false), { kind: "retry", queueAttempt: 1 });
  assert.deepEqual(afterFailure(4, 5, false), { kind: "retry", queueAttempt: 4 });
});

test("a batch goes to the dead-letter queue on its last attempt or when it can never land", () => {
  assert.deepEqual(afterFailure(5, 5, false), { kind: "dead" });
  assert.deepEqual(afterFailure(1, 5, true), { kind: "dead" });
  assert.deepEqual(afterFailure(1, 1, false), { kind: "dead" });
});
