// The layout of a batch's JSON, shared by the api that writes it and the worker that reads
// it. The columns are named once; each row is an array of the file's strings, on a line of
// its own, last in the document:
//
//   {"uploadId":"…","seq":1,"columns":["id",…],"errors":[{…},…],"rows":[
//   {"row":1,"values":["1",…]},
//   {"row":2,"values":["2",…]}
//   ]}
//
// It is ordinary JSON for anyone reading the S3 object, and about 40% smaller than keying
// every value. Because JSON text never holds a raw line break, the worker cuts each row out
// by lines and turns it into a keyed object for PostgreSQL without parsing the batch.

export const ROWS_OPEN = '"rows":[\n';
const ROW_PREFIX = '{"row":';
const VALUES_PREFIX = ',"values":[';

/** The bytes batches and COPY text are made of, for the loops that read and write them. */
export const NEWLINE = 0x0a;
export const TAB = 0x09;
export const COMMA = 0x2c;
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const ROWS_OPEN_BYTES = Buffer.from(ROWS_OPEN);
const ROW_PREFIX_BYTES = Buffer.from(ROW_PREFIX);
const VALUES_PREFIX_BYTES = Buffer.from(VALUES_PREFIX);

/** Short runs by hand: Buffer#copy costs more than the bytes it moves below a few dozen. */
export function copyRun(from: Buffer, start: number, end: number, to: Buffer, at: number): number {
  const n = end - start;
  if (n > 64) return from.copy(to, at, start, end);
  for (let i = 0; i < n; i++) to[at + i] = from[start + i] as number;
  return n;
}

function startsWith(buffer: Buffer, at: number, prefix: Buffer): boolean {
  for (let i = 0; i < prefix.length; i++) if (buffer[at + i] !== prefix[i]) return false;
  return true;
}

export function malformed(line: number): Error {
  return new Error(`batch row line ${line} is malformed`);
}

/** Where the rows section opens; the rows follow ROWS_OPEN, one a line. */
export function rowsOpen(batch: Buffer): number {
  const open = batch.indexOf(ROWS_OPEN_BYTES);
  if (open < 0) throw new Error("batch has no rows section");
  return open;
}

/** How many rows follow `open`: each ends with a line break. */
export function rowCount(batch: Buffer, open: number): number {
  let rows = 0;
  for (let at = batch.indexOf(NEWLINE, open); at >= 0; at = batch.indexOf(NEWLINE, at + 1)) rows++;
  return rows;
}

/** Where a row's number starts, the row starting at `at`. */
export const ROW_NUMBER_AT = ROW_PREFIX_BYTES.length;
/** How far past its number's end a row's first value starts. */
export const VALUES_AFTER = VALUES_PREFIX_BYTES.length;

/** Where the number of the row between `at` and `end` ends; throws unless it is a row. */
export function rowNumberEnd(batch: Buffer, at: number, end: number, line: number): number {
  if (!startsWith(batch, at, ROW_PREFIX_BYTES)) throw malformed(line);
  let p = at + ROW_PREFIX_BYTES.length;
  while (p < end && batch[p] !== COMMA) p++;
  if (!startsWith(batch, p, VALUES_PREFIX_BYTES)) throw malformed(line);
  return p;
}

/** Throws unless the row's values, ending at `p`, close the row that ends at `end`. */
export function checkRowClosed(batch: Buffer, p: number, end: number, line: number): void {
  if (batch[p] !== CLOSE_BRACKET || batch[p + 1] !== CLOSE_BRACE) throw malformed(line);
  const closed = p + 2;
  if (closed !== end && !(closed === end - 1 && batch[closed] === COMMA)) throw malformed(line);
}

/** `"column":` for each column, as COPY text: JSON's backslashes doubled. */
function copyKeys(batch: Buffer, open: number): Buffer[] {
  const head = JSON.parse(`${batch.toString("utf8", 0, open)}"rows":[]}`) as {
    columns?: unknown;
  };
  if (!Array.isArray(head.columns) || !head.columns.every((c) => typeof c === "string")) {
    throw new Error("batch has no list of columns");
  }
  return head.columns.map((column: string) =>
    Buffer.from(`${JSON.stringify(column).replaceAll("\\", "\\\\")}:`),
  );
}

/**
 * The batch's rows in PostgreSQL's COPY text format, `uploadId<TAB>row<TAB>data` a line,
 * data being the row keyed by column, columns in the file's order. Built byte by byte from
 * the batch as it is: each value is already a JSON string, and JSON text has no raw tab or
 * line break, so only backslashes need escaping and no value is decoded on the way.
 */
export function rowsAsCopyText(uploadId: string, batch: Buffer): Buffer {
  const open = rowsOpen(batch);
  const keys = copyKeys(batch, open);
  const id = Buffer.from(`${uploadId}\t`);
  let keyBytes = 0;
  for (const key of keys) keyBytes += key.length;

  // Each row grows by its id and keys; a value's bytes at most double (every one a backslash).
  const rows = rowCount(batch, open);
  const out = Buffer.allocUnsafe(
    (batch.length - open) * 2 + rows * (id.length + keyBytes + keys.length + 4),
  );

  let w = 0;
  let line = 0;
  for (let at = open + ROWS_OPEN_BYTES.length; ; ) {
    const end = batch.indexOf(NEWLINE, at);
    if (end < 0) break;
    line++;
    const numberEnd = rowNumberEnd(batch, at, end, line);
    w += copyRun(id, 0, id.length, out, w);
    w += copyRun(batch, at + ROW_NUMBER_AT, numberEnd, out, w);
    let p = numberEnd + VALUES_AFTER;
    out[w++] = TAB;
    out[w++] = OPEN_BRACE;
    for (let k = 0; k < keys.length; k++) {
      if (k > 0) {
        if (batch[p++] !== COMMA) throw malformed(line);
        out[w++] = COMMA;
      }
      if (batch[p] !== QUOTE) throw malformed(line);
      const key = keys[k] as Buffer;
      w += copyRun(key, 0, key.length, out, w);
      out[w++] = QUOTE;
      p++;
      // Runs without a backslash are copied whole; most values have none.
      for (let from = p; ; ) {
        let b = 0;
        while (p < end) {
          b = batch[p] as number;
          if (b === QUOTE || b === BACKSLASH) break;
          p++;
        }
        if (p >= end) throw malformed(line);
        w += copyRun(batch, from, p, out, w);
        if (b === QUOTE) {
          p++;
          break;
        }
        // COPY reads \\ as one backslash; the escaped character cannot end the string.
        const escaped = batch[p + 1] as number;
        out[w++] = BACKSLASH;
        out[w++] = BACKSLASH;
        out[w++] = escaped;
        if (escaped === BACKSLASH) out[w++] = BACKSLASH;
        p += 2;
        from = p;
      }
      out[w++] = QUOTE;
    }
    checkRowClosed(batch, p, end, line);
    out[w++] = CLOSE_BRACE;
    out[w++] = NEWLINE;
    at = end + 1;
  }
  return out.subarray(0, w);
}
