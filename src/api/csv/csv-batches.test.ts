import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchOf } from "./csv-batches.ts";

describe("batchOf", () => {
  it("puts rows 1..batchSize in batch 1 and the next row in batch 2", () => {
    assert.equal(batchOf(1, 1000), 1);
    assert.equal(batchOf(1000, 1000), 1);
    assert.equal(batchOf(1001, 1000), 2);
    assert.equal(batchOf(12_345, 1000), 13);
  });

  it("gives every row its own batch when the batch size is 1", () => {
    assert.equal(batchOf(1, 1), 1);
    assert.equal(batchOf(7, 1), 7);
  });

  it("rejects row 0, fractions and non-positive batch sizes", () => {
    assert.throws(() => batchOf(0, 1000), RangeError);
    assert.throws(() => batchOf(1.5, 1000), RangeError);
    assert.throws(() => batchOf(1, 0), RangeError);
    assert.throws(() => batchOf(1, Number.NaN), RangeError);
  });
});
