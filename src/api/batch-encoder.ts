// Builds each batch's JSON once, by hand: the same bytes are published, kept in S3 and
// landed in PostgreSQL, and no user-chosen key (even "__proto__") passes through an object.
import { ROW_PREFIX, ROWS_OPEN } from "../core/batch-layout.ts";
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
  const keys = columns.map((column) => `${JSON.stringify(column)}:`);
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
      let data = "";
      for (let i = 0; i < keys.length; i++) {
        data += `${i === 0 ? "" : ","}${keys[i]}${JSON.stringify(values[i])}`;
      }
      rows.push(`${ROW_PREFIX}${row},"data":{${data}}}`);
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
