// Which batch a record belongs to; the api cuts batches by it and counts them by it.

/** 1-based batch sequence of a 1-based row number: rows 1..batchSize are batch 1. */
export function batchOf(row: number, batchSize: number): number {
  if (!Number.isSafeInteger(row) || row < 1)
    throw new RangeError(`row must be a positive integer, got ${row}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  return Math.ceil(row / batchSize);
}
