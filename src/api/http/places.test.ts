import assert from "node:assert/strict";
import { test } from "node:test";
import { createPlaces, tenantShare } from "./places.ts";

test("a tenant gets at most its share, every tenant together at most the whole", () => {
  const places = createPlaces(3, 2);
  const a1 = places.take("a");
  const a2 = places.take("a");
  assert.equal(typeof a1, "function");
  assert.equal(typeof a2, "function");
  assert.equal(places.take("a"), "tenant-full");
  const b1 = places.take("b");
  assert.equal(typeof b1, "function");
  assert.equal(places.take("c"), "full");
  assert.equal(places.held(), 3);
  if (typeof a1 === "function") {
    a1();
    a1();
  }
  assert.equal(places.held(), 2, "a place is given back once");
  assert.equal(typeof places.take("c"), "function");
});

test("a tenant's share is half the places when there are other tenants, at least one, capped", () => {
  assert.equal(tenantShare(32, 3), 16);
  assert.equal(tenantShare(32, 3, 10), 10);
  assert.equal(tenantShare(4, 2), 2);
  assert.equal(tenantShare(1, 2), 1);
  assert.equal(tenantShare(2, 2), 1);
  assert.equal(tenantShare(32, 1), 32, "a lone tenant has no one to leave room for");
  assert.equal(tenantShare(32, 1, 20), 20);
});
