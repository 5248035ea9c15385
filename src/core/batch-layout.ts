// The layout of a batch's JSON, shared by the api that writes it and the worker that reads
// it. Each row stands on a line of its own, last in the document:
//
//   {"uploadId":"…","seq":1,"columns":[…],"errors":[{…},…],"rows":[
//   {"row":1,"data":{"id":"1",…}},
//   {"row":2,"data":{"id":"2",…}}
//   ]}
//
// It is ordinary JSON for anyone reading the S3 object, and because JSON text never holds a
// raw line break, the worker can cut each row's data out by lines without parsing the batch.

export const ROWS_OPEN = '"rows":[\n';
export const ROW_PREFIX = '{"row":';
export const DATA_PREFIX = ',"data":';

const NEWLINE = 0x0a;
const TAB = 0x09;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
const ROWS_OPEN_BYTES = Buffer.from(ROWS_OPEN);
const ROW_PREFIX_BYTES = Buffer.from(ROW_PREFIX);
const DATA_PREFIX_BYTES = Buffer.from(DATA_PREFIX);

/**
 * The batch's rows in PostgreSQL's COPY text format, `uploadId<TAB>row<TAB>data` a line,
 * built from the bytes as they are: JSON text has no raw tab or line break, so only
 * backslashes need escaping, and no row is decoded into a string on the way.
 */
export function rowsAsCopyText(uploadId: string, batch: Buffer): Buffer {
  const open = batch.indexOf(ROWS_OPEN_BYTES);
  if (open < 0) throw new Error("batch has no rows section");
  const id = Buffer.from(`${uploadId}\t`);
  const lines: Array<[number, number, number]> = [];
  let size = 0;
  for (let at = open + ROWS_OPEN_BYTES.length; ; ) {
    const end = batch.indexOf(NEWLINE, at);
    if (end < 0) break;
    const close = batch[end - 1] === COMMA ? end - 1 : end;
    const comma = batch.indexOf(DATA_PREFIX_BYTES, at + ROW_PREFIX_BYTES.length);
    if (
      batch.compare(
        ROW_PREFIX_BYTES,
        0,
        ROW_PREFIX_BYTES.length,
        at,
        at + ROW_PREFIX_BYTES.length,
      ) !== 0 ||
      comma < 0 ||
      comma > close
    ) {
      throw new Error("batch row line is malformed");
    }
    // The row object's last brace closes it, not its data.
    lines.push([at, comma, close - 1]);
    size += id.length + (close - at) + 2;
    for (
      let b = batch.indexOf(BACKSLASH, comma);
      b >= 0 && b < close;
      b = batch.indexOf(BACKSLASH, b + 1)
    )
      size++;
    at = end + 1;
  }
  const out = Buffer.allocUnsafe(size);
  let w = 0;
  for (const [at, comma, dataEnd] of lines) {
    w += id.copy(out, w);
    w += batch.copy(out, w, at + ROW_PREFIX_BYTES.length, comma);
    out[w++] = TAB;
    for (let from = comma + DATA_PREFIX_BYTES.length; from < dataEnd; ) {
      const slash = batch.indexOf(BACKSLASH, from);
      const to = slash < 0 || slash >= dataEnd ? dataEnd : slash + 1;
      w += batch.copy(out, w, from, to);
      if (to === slash + 1) out[w++] = BACKSLASH;
      from = to;
    }
    out[w++] = NEWLINE;
  }
  return out.subarray(0, w);
}
