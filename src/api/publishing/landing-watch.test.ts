import assert from "node:assert/strict";
import { test } from "node:test";
import { hasRoom, resumeSlack } from "./landing-watch.ts";

test("a batch may be published while fewer than the bound are published and not landed", () => {
  // Batches 1..3 published, none landed: the fourth would make four in flight.
  assert.equal(hasRoom(4, 0, 4), true);
  assert.equal(hasRoom(5, 0, 4), false);
  assert.equal(hasRoom(5, 1, 4), true);
  assert.equal(hasRoom(1, 0, 1), true);
  assert.equal(hasRoom(2, 0, 1), false);
});

test("held publishing waits for a few landings, never for more than the bound", () => {
  assert.equal(resumeSlack(256), 32);
  assert.equal(resumeSlack(3), 0);
  for (const max of [1, 2, 7, 8, 256, 1000]) assert.ok(resumeSlack(max) < max);
});
