// Reads a CSV upload pushed in as bytes, from any chunking, and hands each record to a sink.
//
// A hand-written state machine over decoded strings, not csv-parse: csv-parse cannot give the
// byte offset of the first invalid UTF-8 byte, limits the size of whole records rather than of
// fields, and guesses the delimiter from character statistics instead of counting candidates
// outside quotes on the header line. Working on strings also lets the hot loop slice values
// out of decoded text rather than decode each field on its own, which makes it several times
// faster than csv-parse on the same bytes (bench/csv-reader.bench.ts).
// Where it reads records differently from csv-parse is listed, and checked, with generated
// files in csv-reader-differential.test.ts.
import { binaryFormat, detectBom, SNIFF_BYTES } from "./byte-sniffing.ts";
import { CsvFormatError } from "./csv-format-error.ts";
import { type Delimiter, HeaderLineScanner } from "./header-line.ts";
import { RecordTokenizer } from "./record-tokenizer.ts";
import {
  createStreamDecoder,
  MalformedInput,
  type StreamDecoder,
  type TextEncoding,
} from "./text-decoding.ts";

export type { CsvFormatErrorCode, CsvFormatErrorDetails } from "./csv-format-error.ts";
export { CSV_FORMAT_ERROR_CODES, CsvFormatError } from "./csv-format-error.ts";
export type { Delimiter } from "./header-line.ts";
export type { TextEncoding } from "./text-decoding.ts";

export type CsvReaderOptions = {
  /** For files without a byte order mark; a BOM always decides. Default: strict UTF-8. */
  encoding?: "utf-8" | "latin1" | "windows-1252";
  /** Default: detected from the header line. */
  delimiter?: Delimiter;
  maxColumns: number;
  /** Largest value of one field, in UTF-8 bytes. */
  maxFieldBytes: number;
  /** Largest record, its fields' UTF-8 bytes added up. */
  maxRowBytes: number;
};

export type CsvHeader = { columns: string[]; delimiter: Delimiter; encoding: TextEncoding };

export type RowErrorCode =
  | "FieldCount"
  | "NulByte"
  | "FieldTooLarge"
  | "RowTooLarge"
  /** A value that does not convert to its target column's type. */
  | "InvalidValue"
  /** An empty value where the target column needs one. */
  | "MissingValue";

export type RowError = {
  /** Record number: 1 is the first record after the header, counting rejected ones. */
  row: number;
  /** Physical line on which the record starts. */
  line: number;
  code: RowErrorCode;
  message: string;
  /** The start of the record's original text, at most RAW_PREVIEW_CHARS long. */
  raw: string;
};

export type CsvSummary = {
  /** Records after the header, accepted or not. */
  rows: number;
  goodRows: number;
  rowErrors: number;
  blankLines: number;
  bytes: number;
  header: CsvHeader;
};

export type CsvSink = {
  header(header: CsvHeader): void;
  /** `line`, where the record starts, is passed on by sinks that keep it (target-sink.ts). */
  row(row: number, values: string[], line?: number): void;
  rowError(error: RowError): void;
};

export type CsvReader = {
  /**
   * Throws CsvFormatError as soon as the bytes so far prove the file unacceptable. Nothing is
   * read before SNIFF_BYTES have arrived (or end), as that first block decides if it is text.
   */
  push(chunk: Uint8Array): void;
  end(): CsvSummary;
  /** UTF-16 units of text held between pushes: the header line or the record in progress. */
  heldChars(): number;
  /** The line on which the record being handed to the sink starts. */
  recordLine(): number;
};

// Control characters (C0, DEL, C1) and a byte order mark have no place in a column name.
function hasControlCharacter(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0xfeff) return true;
  }
  return false;
}

/** A column name as errors quote it: a header name may be as long as a field. */
function shown(name: string): string {
  return JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
}

export function createCsvReader(options: CsvReaderOptions, sink: CsvSink): CsvReader {
  const { maxColumns, maxFieldBytes, maxRowBytes } = options;
  let head: Uint8Array[] = [];
  let headLength = 0;
  let bytes = 0;
  let bomLength = 0;
  let encoding: TextEncoding = options.encoding ?? "utf-8";
  let decoder: StreamDecoder | undefined;
  const scanner = new HeaderLineScanner();
  let tokenizer: RecordTokenizer | undefined;
  let header: CsvHeader | undefined;
  let rows = 0;
  let goodRows = 0;
  let rowErrors = 0;
  let failure: unknown;
  let ended = false;

  function begin(first: Uint8Array): StreamDecoder {
    const bom = detectBom(first);
    const format = binaryFormat(
      first.subarray(0, SNIFF_BYTES),
      bom !== undefined && bom.encoding !== "utf-8",
    );
    if (format !== undefined) {
      throw new CsvFormatError("NotCsv", `The file is not CSV text: it looks like ${format}.`);
    }
    if (bom) {
      encoding = bom.encoding;
      bomLength = bom.length;
    }
    decoder = createStreamDecoder(encoding);
    decode(decoder, first.subarray(bomLength));
    return decoder;
  }

  function decode(from: StreamDecoder, chunk: Uint8Array | undefined): void {
    let text: string;
    try {
      text = chunk === undefined ? from.end() : from.decode(chunk);
    } catch (error) {
      if (!(error instanceof MalformedInput)) throw error;
      read(error.text);
      const byte = bomLength + error.offset;
      const { line, column } = (tokenizer ?? scanner).position();
      const hint =
        encoding === "utf-8"
          ? "; if it is not UTF-8, give its encoding (latin1 or windows-1252)"
          : "";
      throw new CsvFormatError(
        "InvalidEncoding",
        `The file is not valid ${encoding.toUpperCase()} at byte ${byte} (line ${line}, column ${column})${hint}.`,
        { byte, line, column },
      );
    }
    read(text);
  }

  function read(text: string): void {
    if (tokenizer) tokenizer.push(text);
    else if (scanner.push(text)) startRecords();
  }

  function startRecords(): RecordTokenizer {
    const delimiter = options.delimiter ?? scanner.delimiter();
    let columns = 0;
    const records: RecordTokenizer = new RecordTokenizer({
      delimiter,
      maxFieldBytes,
      firstLine: scanner.headerLine,
      onRecord(values) {
        if (header === undefined) {
          header = acceptHeader(values, records, delimiter);
          columns = header.columns.length;
          records.keep = columns;
          records.maxRowBytes = maxRowBytes;
          sink.header(header);
          return;
        }
        const row = ++rows;
        if (
          records.fieldCount === columns &&
          records.tooLargeField < 0 &&
          records.nulField < 0 &&
          !records.rowTooLarge
        ) {
          goodRows++;
          sink.row(row, values);
          return;
        }
        rowErrors++;
        sink.rowError(rowError(row, records, header.columns));
      },
    });
    // Names past maxColumns are only counted: the header is rejected then.
    records.keep = maxColumns;
    tokenizer = records;
    records.push(scanner.take());
    return records;
  }

  function acceptHeader(
    names: string[],
    records: RecordTokenizer,
    delimiter: Delimiter,
  ): CsvHeader {
    const line = records.recordLine;
    if (records.fieldCount > maxColumns) {
      throw new CsvFormatError(
        "TooManyColumns",
        `The header on line ${line} has ${records.fieldCount} columns; at most ${maxColumns} are allowed.`,
        { line },
      );
    }
    const problems: string[] = [];
    const offending: string[] = [];
    let firstColumn: number | undefined;
    const seen = new Map<string, number>();
    names.forEach((name, index) => {
      const column = index + 1;
      const quoted = shown(name);
      let problem: string | undefined;
      if (index === records.tooLargeField || Buffer.byteLength(name, "utf8") > maxFieldBytes) {
        problem = `column ${column} ${quoted} is longer than ${maxFieldBytes} bytes`;
      } else if (name.trim() === "") {
        problem = `column ${column} has no name`;
      } else if (hasControlCharacter(name)) {
        problem = `column ${column} ${quoted} holds a control character`;
      } else if (seen.has(name)) {
        problem = `column ${column} repeats ${quoted} from column ${seen.get(name)}`;
      } else {
        seen.set(name, column);
      }
      if (problem === undefined) return;
      problems.push(problem);
      if (!offending.includes(name)) offending.push(name);
      firstColumn ??= column;
    });
    if (problems.length > 0) {
      throw new CsvFormatError(
        "InvalidHeader",
        `Invalid header on line ${line}: ${problems.join("; ")}.`,
        {
          line,
          column: firstColumn,
          names: offending.map((name) => (name.length > 40 ? `${name.slice(0, 40)}…` : name)),
        },
      );
    }
    return { columns: names, delimiter, encoding };
  }

  function rowError(row: number, records: RecordTokenizer, columns: string[]): RowError {
    const base = { row, line: records.recordLine, raw: records.rawPreview() };
    const name = (index: number) =>
      `field ${index + 1}${columns[index] ? ` (${shown(columns[index])})` : ""}`;
    if (records.fieldCount !== columns.length) {
      return {
        ...base,
        code: "FieldCount",
        message: `Row ${row} has ${records.fieldCount} field${records.fieldCount === 1 ? "" : "s"}; the header has ${columns.length}.`,
      };
    }
    if (records.tooLargeField >= 0) {
      return {
        ...base,
        code: "FieldTooLarge",
        message: `Row ${row}: ${name(records.tooLargeField)} is longer than ${maxFieldBytes} bytes.`,
      };
    }
    if (records.rowTooLarge) {
      return {
        ...base,
        code: "RowTooLarge",
        message: `Row ${row} is longer than ${maxRowBytes} bytes.`,
      };
    }
    return {
      ...base,
      code: "NulByte",
      message: `Row ${row}: ${name(records.nulField)} holds a NUL character.`,
    };
  }

  function guarded<T>(work: () => T): T {
    if (failure !== undefined) throw failure;
    if (ended) throw new Error("The CSV reader has already ended.");
    try {
      return work();
    } catch (error) {
      failure = error;
      throw error;
    }
  }

  function joinHead(): Uint8Array {
    const first = new Uint8Array(headLength);
    let at = 0;
    for (const part of head) {
      first.set(part, at);
      at += part.length;
    }
    head = [];
    return first;
  }

  return {
    heldChars: () => (tokenizer ? tokenizer.heldChars() : scanner.heldChars() + headLength),
    recordLine: () => tokenizer?.recordLine ?? 0,
    push(chunk) {
      guarded(() => {
        bytes += chunk.length;
        if (decoder) return decode(decoder, chunk);
        head.push(chunk.slice());
        headLength += chunk.length;
        if (headLength >= SNIFF_BYTES) begin(joinHead());
      });
    },
    end() {
      return guarded(() => {
        if (bytes === 0) throw new CsvFormatError("EmptyFile", "The file is empty.");
        decode(decoder ?? begin(joinHead()), undefined);
        let records = tokenizer;
        if (records === undefined) {
          scanner.finish();
          records = startRecords();
        }
        records.finish();
        ended = true;
        if (header === undefined)
          throw new CsvFormatError("EmptyFile", "The file holds no CSV header.");
        if (rows === 0)
          throw new CsvFormatError("NoDataRows", "The file has a header but no data rows.");
        return {
          rows,
          goodRows,
          rowErrors,
          blankLines: scanner.blankLines + records.blankLines,
          bytes,
          header,
        };
      });
    },
  };
}
