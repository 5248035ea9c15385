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

/**
 * The batch's rows in PostgreSQL's COPY text format: `uploadId<TAB>row<TAB>data`. JSON text
 * has no raw tab or line break, so only backslashes need escaping.
 */
export function rowsAsCopyText(uploadId: string, batch: string): string {
  const start = batch.indexOf(ROWS_OPEN);
  if (start < 0) throw new Error("batch has no rows section");
  let out = "";
  let at = start + ROWS_OPEN.length;
  for (;;) {
    const end = batch.indexOf("\n", at);
    if (end < 0) break;
    const line =
      batch.charCodeAt(end - 1) === 44 /* , */ ? batch.slice(at, end - 1) : batch.slice(at, end);
    at = end + 1;
    const comma = line.indexOf(DATA_PREFIX, ROW_PREFIX.length);
    if (!line.startsWith(ROW_PREFIX) || comma < 0) throw new Error("batch row line is malformed");
    const row = line.slice(ROW_PREFIX.length, comma);
    const data = line.slice(comma + DATA_PREFIX.length, -1);
    out += `${uploadId}\t${row}\t${data.includes("\\") ? data.replaceAll("\\", "\\\\") : data}\n`;
  }
  return out;
}
