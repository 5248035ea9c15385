// Builds each batch's JSON once, by hand: the same bytes are published, kept in S3 and
// landed in PostgreSQL. A row is its array of strings, which JSON.stringify encodes in one
// call, several times faster than keying each value (see batch-layout.ts).
import { ROWS_OPEN } from "../core/batch-layout.ts";
import type { RowError } from "./csv/csv-reader.ts";

export type BatchEncoder = Readonly<{
  /** Starts batch `seq`, dropping whatever the previous one held. */
  start(seq: number): void;
  row(row: number, values: string[]): void;
  error(error: RowError): void;
  rows(): number;
  errors(): number;
  finish(): Buffer;
}>;

export function createBatchEncoder(uploadId: string, columns: string[]): BatchEncoder {
  const columnsJson = JSON.stringify(columns);
  let seq = 0;
  let rows: string[] = [];
  let errors: string[] = [];

  return {
    start(next) {
      seq = next;
      rows = [];
      errors = [];
    },
    row(row, values) {
      // {"row":n,"values":[…]}, the row line of batch-layout.ts. Not built with `${row}`: V8
      // keeps each number's string in a cache that outlives its scavenges, so every row's
      // number (24 MB in a million rows) would reach the old generation and grow the heap.
      rows.push(JSON.stringify({ row, values }));
    },
    error(error) {
      errors.push(
        `{"row":${error.row},"line":${error.line},"code":${JSON.stringify(error.code)},"message":${JSON.stringify(error.message)}}`,
      );
    },
    rows: () => rows.length,
    errors: () => errors.length,
    // Rows last, one per line: see batch-layout.ts.
    finish: () =>
      Buffer.from(
        `{"uploadId":"${uploadId}","seq":${seq},"columns":${columnsJson},"errors":[${errors.join(",")}],${ROWS_OPEN}${rows.length ? `${rows.join(",\n")}\n` : ""}]}`,
      ),
  };
}
