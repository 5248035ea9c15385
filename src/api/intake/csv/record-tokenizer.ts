// The hot loop: splits decoded CSV text into records, whatever the chunk boundaries.
import { CsvFormatError } from "./csv-format-error.ts";

const NUL = 0;
const LF = 10;
const CR = 13;
const QUOTE = 34;

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const AFTER_QUOTE = 3;

/** How much of a record's original text a rejected row carries along. */
export const RAW_PREVIEW_CHARS = 200;

export type RecordTokenizerOptions = {
  delimiter: string;
  maxFieldBytes: number;
  /** Physical line of the first character given to the tokenizer. */
  firstLine: number;
  /** Called once per record with its stored fields; the array is not reused. */
  onRecord: (values: string[]) => void;
};

/**
 * RFC 4180 with lenient edges: a quote only opens a quoted field as its first character, so
 * `ab"c` is kept literally; text after a closing quote is appended (`"ab"c` reads `abc`).
 * LF, CRLF and CR all end a record; an empty line is a blank line, not a record.
 */
export class RecordTokenizer {
  /** Fields of the current record, counting those beyond `keep`. */
  fieldCount = 0;
  /** 0-based index of the first field holding a NUL character, or -1. */
  nulField = -1;
  /** 0-based index of the first field over maxFieldBytes, or -1. */
  tooLargeField = -1;
  /** The current record's stored fields add up to more than maxRowBytes. */
  rowTooLarge = false;
  /**
   * Largest record, in UTF-8 bytes of its stored fields: past it the record's values are
   * dropped, so memory holds at most this much of one record. None for the header line.
   */
  maxRowBytes = Number.POSITIVE_INFINITY;
  /** Physical line on which the current record starts. */
  recordLine: number;
  blankLines = 0;
  /** How many fields of a record are stored; later ones are only counted. */
  keep = Number.POSITIVE_INFINITY;

  readonly #delimiter: number;
  readonly #maxFieldBytes: number;
  // A value whose UTF-16 length is at most this cannot exceed maxFieldBytes in UTF-8.
  readonly #surelySmall: number;
  readonly #onRecord: (values: string[]) => void;
  #values: string[] = [];
  // UTF-16 units of the values stored so far: a lower bound of their UTF-8 bytes.
  #rowChars = 0;
  #state = FIELD_START;
  #field = "";
  // The current field grew past maxFieldBytes across chunks and its text was dropped.
  #overflow = false;
  #quoted = false;
  #line: number;
  // Offsets below count UTF-16 code units from the first character given to the tokenizer.
  #base = 0;
  #lineStart = 0;
  #crPending = false;
  #quoteLine = 0;
  #quoteColumn = 0;
  #text = "";
  #textBase = 0;
  #rawFrom = 0;
  #rawPrefix = "";
  #recordEnd = 0;

  constructor(options: RecordTokenizerOptions) {
    this.#delimiter = options.delimiter.charCodeAt(0);
    this.#maxFieldBytes = options.maxFieldBytes;
    this.#surelySmall = Math.floor(options.maxFieldBytes / 3);
    this.#onRecord = options.onRecord;
    this.#line = options.firstLine;
    this.recordLine = options.firstLine;
  }

  /** UTF-16 units held for the record in progress, its stored values and current field. */
  heldChars(): number {
    return this.#rowChars + this.#field.length;
  }

  /** Where the next character would be: for errors found between two pieces of text. */
  position(): { line: number; column: number } {
    return { line: this.#line, column: this.#base - this.#lineStart + 1 };
  }

  /** The start of the current record's original text, for the record callback. */
  rawPreview(): string {
    const from = this.#rawFrom - this.#textBase;
    const to = Math.min(this.#recordEnd - this.#textBase, from + RAW_PREVIEW_CHARS);
    return (this.#rawPrefix + this.#text.slice(from, to)).slice(0, RAW_PREVIEW_CHARS);
  }

  push(s: string): void {
    const n = s.length;
    if (n === 0) return;
    const delimiter = this.#delimiter;
    const base = this.#base;
    let state = this.#state;
    let field = this.#field;
    let line = this.#line;
    let lineStart = this.#lineStart;
    // Index of the last CR taken as a line break, so that the LF of a CRLF is not a second one.
    let crAt = this.#crPending ? -1 : -2;
    let start = 0;
    let i = 0;
    this.#text = s;
    this.#textBase = base;

    while (i < n) {
      if (state === FIELD_START) {
        if (s.charCodeAt(i) === QUOTE) {
          state = QUOTED;
          this.#quoted = true;
          this.#quoteLine = line;
          this.#quoteColumn = base + i - lineStart + 1;
          start = ++i;
          continue;
        }
        state = UNQUOTED;
        start = i;
      }

      if (state === UNQUOTED) {
        let c = 0;
        while (i < n) {
          c = s.charCodeAt(i);
          if (c === delimiter || c === LF || c === CR || c === NUL) break;
          i++;
        }
        if (i === n) break;
        if (c === NUL) {
          if (this.nulField < 0) this.nulField = this.fieldCount;
          i++;
          continue;
        }
        if (c === delimiter) {
          this.#endField(field + s.slice(start, i));
          field = "";
          state = FIELD_START;
          i++;
          continue;
        }
        if (c === LF && crAt === i - 1) {
          // Nothing was read since that CR ended a line.
          i++;
        } else {
          if (
            this.fieldCount === 0 &&
            start === i &&
            field === "" &&
            !this.#quoted &&
            !this.#overflow
          ) {
            this.blankLines++;
          } else {
            this.#endField(field + s.slice(start, i));
            field = "";
            this.#recordEnd = base + i;
            this.#emit();
          }
          line++;
          if (c === CR) crAt = i;
          i++;
          this.recordLine = line;
        }
        lineStart = base + i;
        this.#rawFrom = base + i;
        state = FIELD_START;
        continue;
      }

      if (state === QUOTED) {
        let c = 0;
        while (i < n) {
          c = s.charCodeAt(i);
          if (c === QUOTE || c === LF || c === CR || c === NUL) break;
          i++;
        }
        if (i === n) break;
        if (c === QUOTE) {
          field += s.slice(start, i);
          state = AFTER_QUOTE;
          start = ++i;
          continue;
        }
        if (c === NUL) {
          if (this.nulField < 0) this.nulField = this.fieldCount;
        } else if (c === CR) {
          line++;
          crAt = i;
          lineStart = base + i + 1;
        } else {
          if (crAt !== i - 1) line++;
          lineStart = base + i + 1;
        }
        i++;
        continue;
      }

      // AFTER_QUOTE: a second quote is an escaped one and starts the next piece of the value.
      start = i;
      if (s.charCodeAt(i) === QUOTE) {
        state = QUOTED;
        i++;
      } else {
        state = UNQUOTED;
      }
    }

    if (state === UNQUOTED || state === QUOTED) field += s.slice(start, n);
    if (field.length > this.#maxFieldBytes) {
      field = "";
      this.#overflow = true;
    }
    if (this.#rawPrefix.length < RAW_PREVIEW_CHARS) {
      const from = this.#rawFrom - base;
      this.#rawPrefix += s.slice(from, from + RAW_PREVIEW_CHARS - this.#rawPrefix.length);
    }
    this.#rawFrom = base + n;
    this.#state = state;
    this.#field = field;
    this.#line = line;
    this.#lineStart = lineStart;
    this.#crPending = crAt === n - 1;
    this.#base = base + n;
  }

  /** Ends the last record; throws UnterminatedQuote if a quoted field is still open. */
  finish(): void {
    if (this.#state === QUOTED) {
      throw new CsvFormatError(
        "UnterminatedQuote",
        `The quote opened on line ${this.#quoteLine}, column ${this.#quoteColumn} is never closed.`,
        { line: this.#quoteLine, column: this.#quoteColumn },
      );
    }
    if (this.#state !== FIELD_START || this.fieldCount > 0) {
      this.#endField(this.#field);
      this.#field = "";
      this.#state = FIELD_START;
      this.#recordEnd = this.#base;
      this.#emit();
    }
  }

  #endField(value: string): void {
    if (
      this.tooLargeField < 0 &&
      (this.#overflow ||
        (value.length > this.#surelySmall &&
          Buffer.byteLength(value, "utf8") > this.#maxFieldBytes))
    ) {
      this.tooLargeField = this.fieldCount;
    }
    this.#overflow = false;
    if (this.fieldCount < this.keep && !this.rowTooLarge) {
      this.#rowChars += value.length;
      if (this.#rowChars > this.maxRowBytes) {
        this.rowTooLarge = true;
        this.#values = [];
      } else {
        this.#values.push(value);
      }
    }
    this.fieldCount++;
  }

  #emit(): void {
    const values = this.#values;
    // A record of at most a third of the limit in UTF-16 units is within it in UTF-8.
    if (!this.rowTooLarge && this.#rowChars > this.maxRowBytes / 3) {
      let bytes = 0;
      for (const value of values) bytes += Buffer.byteLength(value, "utf8");
      this.rowTooLarge = bytes > this.maxRowBytes;
    }
    this.#onRecord(values);
    this.#values = [];
    this.#rowChars = 0;
    this.rowTooLarge = false;
    this.fieldCount = 0;
    this.nulField = -1;
    this.tooLargeField = -1;
    this.#quoted = false;
    this.#rawPrefix = "";
  }
}
