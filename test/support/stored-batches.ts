// Batches as the api's spool stores them (batch-spool.ts), for tests that lay an upload's
// stored file down themselves: whole, cut short, or for uploads no client sent.
import { frameOf } from "../../src/api/intake/batch-spool.ts";

/** Batch `seq` of upload `id` as stored: one row counted, no columns' values to land. */
export const storedBatch = (id: string, seq: number): Buffer =>
  Buffer.concat(
    frameOf({
      seq,
      rows: 1,
      rowErrors: 0,
      body: Buffer.from(
        JSON.stringify({ uploadId: id, seq, columns: ["id"], errors: [], rows: [] }),
      ),
    }),
  );
