import assert from "node:assert/strict";
import { test } from "node:test";
import { queueNames } from "./queue-names.ts";

test("queue names hang off the namespace", () => {
  const names = queueNames("sluice");
  assert.equal(names.batches, "sluice.batches");
  assert.equal(names.dead, "sluice.batches.dead");
  assert.equal(names.retry(1), "sluice.batches.retry.1");
  assert.equal(names.retry(3), "sluice.batches.retry.3");
});

test("two namespaces never share a queue", () => {
  const a = queueNames("sluice");
  const b = queueNames("sluice-staging");
  assert.notEqual(a.batches, b.batches);
  assert.notEqual(a.dead, b.dead);
  assert.notEqual(a.retry(1), b.retry(1));
});
