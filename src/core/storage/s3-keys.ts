/** Zero-padded so that the key is the same on every delivery and sorts in row order. */
export function batchKey(uploadId: string, seq: number): string {
  return `uploads/${uploadId}/batch-${String(seq).padStart(8, "0")}.json`;
}

export function uploadPrefix(uploadId: string): string {
  return `uploads/${uploadId}/`;
}
