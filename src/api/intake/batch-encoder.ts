// Builds each batch's JSON once, by hand: the same bytes are published, kept in S3 and
// landed in PostgreSQL. A row is its array of strings, which JSON.stringify encodes in one
// call, several times faster than keying each value (see batch-layout.ts).
import { ROWS_OPEN } from "../../core/uploads/batch-layout.ts";
import type { RowError } from "./csv/csv-reader.ts";

export type BatchEncoder = Readonly<{
  /** Starts batch `seq`, dropping whatever the previous one held. */
  start(seq: number): void;
  /** `line` where the record starts, for rows whose line the worker may have to name. */
  row(row: number, values: string[], line?: number): void;
  error(error: RowError): void;
  rows(): number;
  errors(): number;
  /** UTF-16 units of JSON held for the batch's rows and errors so far. */
  size(): number;
  finish(): Buffer;
}>;

export function createBatchEncoder(uploadId: string, columns: string[]): BatchEncoder {
  const columnsJson = JSON.stringify(columns);
  let seq = 0;
  let rows: string[] = [];
  let errors: string[] = [];
  let size = 0;
  // Each row's line as steps: from row r on, line = row + (l - r), until the next step. A
  // file whose records each hold one line and no blank line between needs one step a batch.
  let lines: string[] = [];
  let lineOffset = Number.NaN;

  return {
    start(next) {
      seq = next;
      rows = [];
      errors = [];
      size = 0;
      lines = [];
      lineOffset = Number.NaN;
    },
    row(row, values, line) {
      if (line !== undefined && line - row !== lineOffset) {
        lineOffset = line - row;
        lines.push(JSON.stringify([row, line]));
      }
      // {"row":n,"values":[…]}, the row line of batch-layout.ts. Not built with `${row}`: V8
      // keeps each number's string in a cache that outlives its scavenges, so every row's
      // number (24 MB in a million rows) would reach the old generation and grow the heap.
      const json = JSON.stringify({ row, values });
      size += json.length;
      rows.push(json);
    },
    error(error) {
      const json = `{"row":${error.row},"line":${error.line},"code":${JSON.stringify(error.code)},"message":${JSON.stringify(error.message)}}`;
      size += json.length;
      errors.push(json);
    },
    rows: () => rows.length,
    errors: () => errors.length,
    size: () => size,
    // Rows last, one per line: see batch-layout.ts.
    finish: () =>
      Buffer.from(
        `{"uploadId":"${uploadId}","seq":${seq},"columns":${columnsJson},"errors":[${errors.join(",")}],${lines.length ? `"lines":[${lines.join(",")}],` : ""}${ROWS_OPEN}${rows.length ? `${rows.join(",\n")}\n` : ""}]}`,
      ),
  };
}
