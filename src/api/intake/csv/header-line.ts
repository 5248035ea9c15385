// Finds the header line before the delimiter is known, and picks the delimiter from it.
import { CsvFormatError } from "./csv-format-error.ts";

export const DELIMITERS = [",", ";", "\t", "|"] as const;
export type Delimiter = (typeof DELIMITERS)[number];

/** Longest header line (or whitespace-only line before it) held in memory, in UTF-16 code units. */
export const MAX_HEADER_CHARS = 1 << 20;

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const QUOTE = 34;
const CANDIDATE_CODES: readonly number[] = DELIMITERS.map((d) => d.charCodeAt(0));

/**
 * Buffers text up to the end of the header line: the first line holding anything but spaces
 * and tabs. The earlier lines are dropped and counted as blank. Until the delimiter is known,
 * every candidate acts as one, so a quote opens a quoted field at the start of the line or
 * right after any candidate, and only candidates outside quotes are counted.
 */
export class HeaderLineScanner {
  /** Lines skipped before the header line. */
  blankLines = 0;
  /** Physical line on which the header starts. */
  headerLine = 1;
  done = false;

  #kept: string[] = [];
  #counts = DELIMITERS.map(() => 0);
  #hasContent = false;
  #inQuote = false;
  #afterQuote = false;
  #atFieldStart = true;
  #quoteLine = 0;
  #quoteColumn = 0;
  #line = 1;
  // Offsets count UTF-16 code units from the first character scanned.
  #base = 0;
  #lineStart = 0;
  #headerStart = 0;
  #crAt = -2;

  /** Returns true once the header line has ended; later text is kept, unscanned. */
  push(text: string): boolean {
    if (this.done) {
      this.#kept.push(text);
      return true;
    }
    const base = this.#base;
    let keepFrom = 0;
    let i = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      const at = base + i;
      if (this.#afterQuote) {
        this.#afterQuote = false;
        if (c === QUOTE) continue;
        this.#inQuote = false;
      }
      if (this.#inQuote) {
        if (c === QUOTE) this.#afterQuote = true;
        else if (c === CR || (c === LF && this.#crAt !== at - 1)) this.#newLine(c, at);
        else if (c === LF) this.#lineStart = at + 1;
        continue;
      }
      if (c === CR || c === LF) {
        if (this.#hasContent) {
          this.#checkLength(at);
          this.done = true;
          break;
        }
        if (c === CR || this.#crAt !== at - 1) {
          this.#checkLength(at);
          this.#newLine(c, at);
          this.blankLines++;
          this.headerLine = this.#line;
        }
        this.#lineStart = at + 1;
        this.#headerStart = at + 1;
        this.#kept = [];
        keepFrom = i + 1;
        this.#counts.fill(0);
        this.#atFieldStart = true;
        continue;
      }
      if (c === QUOTE && this.#atFieldStart) {
        this.#inQuote = true;
        this.#hasContent = true;
        this.#atFieldStart = false;
        this.#quoteLine = this.#line;
        this.#quoteColumn = at - this.#lineStart + 1;
        continue;
      }
      const candidate = CANDIDATE_CODES.indexOf(c);
      if (candidate >= 0) {
        this.#counts[candidate] = (this.#counts[candidate] as number) + 1;
        this.#atFieldStart = true;
      } else {
        this.#atFieldStart = false;
      }
      if (c !== SPACE && c !== TAB) this.#hasContent = true;
    }
    this.#kept.push(keepFrom === 0 ? text : text.slice(keepFrom));
    this.#base = base + text.length;
    if (!this.done) this.#checkLength(this.#base);
    return this.done;
  }

  /** Ends the text; throws EmptyFile when there is no header line. */
  finish(): void {
    if (this.done) return;
    if (!this.#hasContent) throw new CsvFormatError("EmptyFile", "The file holds no CSV header.");
    this.#checkLength(this.#base);
    this.done = true;
  }

  /** The most frequent candidate outside quotes; the comma wins ties and single-column files. */
  delimiter(): Delimiter {
    let best = 0;
    for (let k = 1; k < DELIMITERS.length; k++) {
      if ((this.#counts[k] as number) > (this.#counts[best] as number)) best = k;
    }
    return DELIMITERS[best] as Delimiter;
  }

  /** The text from the start of the header line on, handing it over. */
  take(): string {
    const text = this.#kept.join("");
    this.#kept = [];
    return text;
  }

  /** UTF-16 units held until the header line ends. */
  heldChars(): number {
    return this.#base - this.#headerStart;
  }

  position(): { line: number; column: number } {
    return { line: this.#line, column: this.#base - this.#lineStart + 1 };
  }

  #newLine(c: number, at: number): void {
    this.#line++;
    this.#lineStart = at + 1;
    if (c === CR) this.#crAt = at;
  }

  #checkLength(end: number): void {
    if (end - this.#headerStart <= MAX_HEADER_CHARS) return;
    const hint = this.#inQuote
      ? `; the quote opened on line ${this.#quoteLine}, column ${this.#quoteColumn} may be unterminated`
      : "";
    throw new CsvFormatError(
      "HeaderTooLarge",
      `The header line is longer than ${MAX_HEADER_CHARS} characters${hint}.`,
      { line: this.headerLine },
    );
  }
}
