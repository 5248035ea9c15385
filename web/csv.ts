// Splits the rejected rows' CSV (`row,line,code,message`) into records as it arrives, quoted
// fields with commas, quotes and line breaks included, so the table can stop after a few.

export async function* readCsvRecords(body: ReadableStream<Uint8Array>): AsyncGenerator<string[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let record: string[] = [];
  let field = "";
  let quoted = false;
  /** A quote seen inside a quoted field: either the field's end or the first of a pair. */
  let quoteSeen = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const text = done ? "" : decoder.decode(value, { stream: true });
      for (const char of text) {
        if (quoted) {
          if (quoteSeen) {
            quoteSeen = false;
            if (char === '"') {
              field += '"';
              continue;
            }
            quoted = false;
          } else if (char === '"') {
            quoteSeen = true;
            continue;
          } else {
            field += char;
            continue;
          }
        }
        if (char === '"' && field === "") quoted = true;
        else if (char === ",") {
          record.push(field);
          field = "";
        } else if (char === "\n") {
          record.push(field.endsWith("\r") ? field.slice(0, -1) : field);
          field = "";
          yield record;
          record = [];
        } else field += char;
      }
      if (done) {
        if (field !== "" || record.length > 0) yield [...record, field];
        return;
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
