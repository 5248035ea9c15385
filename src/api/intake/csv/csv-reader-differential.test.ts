// Sluice's CSV reader against csv-parse: for generated files (quoted and unquoted fields
// holding quotes, delimiters and line breaks; LF, CRLF and CR mixed; blank lines; byte order
// marks; any chunking), the header and records it gives are csv-parse's with the same
// options, and a record whose field count differs from the header's is the row error the
// reader lists instead. Where the two read differently on purpose is listed and checked at
// the end (DIFFERENCES).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Options, parse } from "csv-parse/sync";
import fc from "fast-check";
import { createCsvReader, type Delimiter } from "./csv-reader.ts";

/** csv-parse's options for what the reader does: lenient quotes, any line ending, blank lines skipped. */
const csvParseOptions = (delimiter: Delimiter): Options => ({
  delimiter,
  bom: true,
  relax_quotes: true,
  relax_column_count: true,
  skip_empty_lines: true,
  record_delimiter: ["\r\n", "\n", "\r"],
});

/** Limits no generated file comes near: they are not what is compared. */
const LIMITS = { maxColumns: 1_000, maxFieldBytes: 1_000_000, maxRowBytes: 10_000_000 };

type Read =
  | {
      header: string[];
      records: Array<{ row: number; values: string[] } | { row: number; error: string }>;
    }
  | { failed: string };

/** What the reader gives for `bytes` pushed in the chunks that `cuts` make. */
function readerRead(bytes: Uint8Array, delimiter: Delimiter, cuts: number[]): Read {
  let header: string[] = [];
  const records: Array<{ row: number; values: string[] } | { row: number; error: string }> = [];
  const reader = createCsvReader(
    { ...LIMITS, delimiter },
    {
      header: (h) => {
        header = h.columns;
      },
      row: (row, values) => records.push({ row, values }),
      rowError: (error) => records.push({ row: error.row, error: error.code }),
    },
  );
  try {
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      reader.push(bytes.slice(from, cut));
      from = cut;
    }
    reader.end();
  } catch (error) {
    return { failed: (error as { code?: string }).code ?? String(error) };
  }
  return { header, records };
}

/**
 * What csv-parse gives, in the reader's terms: a record of another length than the header's
 * is a FieldCount row error.
 */
function csvParseRead(input: Buffer | string, delimiter: Delimiter): Read {
  let parsed: string[][];
  try {
    parsed = parse(input, csvParseOptions(delimiter));
  } catch (error) {
    return { failed: (error as { code?: string }).code ?? String(error) };
  }
  const [header, ...rest] = parsed;
  // The reader refuses a file without a header, or without a record after it, as a whole.
  if (header === undefined) return { failed: "EmptyFile" };
  if (rest.length === 0) return { failed: "NoDataRows" };
  return {
    header,
    records: rest.map((values, i) =>
      values.length === header.length
        ? { row: i + 1, values }
        : { row: i + 1, error: "FieldCount" },
    ),
  };
}

const DELIMITERS: Delimiter[] = [",", ";", "\t", "|"];
const LINE_ENDINGS = ["\n", "\r\n", "\r"];
// Quotes, every delimiter, line breaks, multi-byte and astral characters, spaces.
const VALUE_CHARS = ["a", "b", "1", " ", '"', ",", ";", "\t", "|", "\n", "\r", "é", "€", "😀"];
// A column name holds no control character (the reader refuses those).
const NAME_CHARS = ["a", " ", '"', ",", ";", "|", "é", "😀"];

type Field = { value: string; quoted: boolean };
type File = {
  delimiter: Delimiter;
  bom: "none" | "utf-8" | "utf-16le" | "utf-16be";
  leading: string[];
  header: Field[];
  headerEnding: string;
  records: Array<{ fields: Field[]; blankLinesBefore: string[]; ending: string }>;
  finalEnding: boolean;
};

/** As a writer puts it: quoted (its quotes doubled) when it must be, else as generated. */
function encodeField({ value, quoted }: Field, delimiter: string): string {
  const must =
    value.startsWith('"') ||
    value.includes(delimiter) ||
    value.includes("\n") ||
    value.includes("\r") ||
    value === "";
  return quoted || (must && value !== "") ? `"${value.replaceAll('"', '""')}"` : value;
}

function fileText(file: File): string {
  const line = (fields: Field[]) =>
    fields.map((f) => encodeField(f, file.delimiter)).join(file.delimiter);
  let text = `${file.leading.join("")}${line(file.header)}${file.headerEnding}`;
  file.records.forEach((record, i) => {
    text += record.blankLinesBefore.join("");
    text += line(record.fields);
    if (i < file.records.length - 1 || file.finalEnding) text += record.ending;
  });
  return text;
}

function fileBytes(text: string, bom: File["bom"]): Buffer {
  if (bom === "utf-8") return Buffer.from(`\ufeff${text}`);
  if (bom === "utf-16le") return Buffer.from(`\ufeff${text}`, "utf16le");
  if (bom === "utf-16be") return Buffer.from(`\ufeff${text}`, "utf16le").swap16();
  return Buffer.from(text);
}

const value = (chars: string[]) =>
  fc.array(fc.constantFrom(...chars), { maxLength: 6 }).map((c) => c.join(""));
const field = fc.record({ value: value(VALUE_CHARS), quoted: fc.boolean() });

const files: fc.Arbitrary<File> = fc
  .record({
    delimiter: fc.constantFrom(...DELIMITERS),
    bom: fc.constantFrom("none", "utf-8", "utf-16le", "utf-16be"),
    leading: fc.array(fc.constantFrom(...LINE_ENDINGS), { maxLength: 3 }),
    columns: fc.integer({ min: 1, max: 5 }),
    headerEnding: fc.constantFrom(...LINE_ENDINGS),
    names: fc.array(fc.record({ suffix: value(NAME_CHARS), quoted: fc.boolean() }), {
      minLength: 5,
      maxLength: 5,
    }),
    // Long enough, at times, for its records to reach the reader past its first block.
    padding: fc.integer({ min: 0, max: 200 }),
    records: fc.array(
      fc.record({
        // Mostly the header's count of fields, at times one fewer or more.
        extra: fc.constantFrom(0, 0, 0, 0, -1, 1),
        fields: fc.array(field, { minLength: 6, maxLength: 6 }),
        blankLinesBefore: fc.array(fc.constantFrom(...LINE_ENDINGS), { maxLength: 2 }),
        ending: fc.constantFrom(...LINE_ENDINGS),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    finalEnding: fc.boolean(),
  })
  .map(
    ({ delimiter, bom, leading, columns, headerEnding, names, padding, records, finalEnding }) => {
      const header = names
        .slice(0, columns)
        .map(({ suffix, quoted }, i) => ({ value: `c${i}${suffix}`, quoted }));
      const pad = Array.from({ length: padding }, (_, i) => ({
        fields: Array.from({ length: columns }, (_, k) => ({
          value: k === 0 ? String(i) : "padding-value",
          quoted: false,
        })),
        blankLinesBefore: [],
        ending: LINE_ENDINGS[i % LINE_ENDINGS.length] as string,
      }));
      return {
        delimiter,
        bom,
        leading,
        header,
        headerEnding,
        records: [
          ...pad,
          ...records.map((r) => ({
            fields: r.fields.slice(0, Math.max(1, columns + r.extra)),
            blankLinesBefore: r.blankLinesBefore,
            ending: r.ending,
          })),
        ],
        finalEnding,
      };
    },
  );

/** Cut points for a file of `length` bytes, drawn as fractions of it. */
const chunkings = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });
const cutsOf = (fractions: number[], length: number) =>
  [...new Set(fractions.map((f) => Math.floor(f * length)))]
    .filter((c) => c > 0 && c < length)
    .sort((a, b) => a - b);

/** csv-parse knows the UTF-8 and UTF-16 LE byte order marks, not UTF-16 BE's (see DIFFERENCES). */
const csvParseInput = (text: string, bom: File["bom"]) =>
  fileBytes(text, bom === "utf-16be" ? "utf-16le" : bom);

describe("the CSV reader against csv-parse", () => {
  it("gives csv-parse's header and records for generated files, in any chunking", () => {
    fc.assert(
      fc.property(files, chunkings, (file, fractions) => {
        const text = fileText(file);
        const bytes = fileBytes(text, file.bom);
        const expected = csvParseRead(csvParseInput(text, file.bom), file.delimiter);
        assert.deepEqual(
          readerRead(bytes, file.delimiter, cutsOf(fractions, bytes.length)),
          expected,
        );
      }),
      { numRuns: 300 },
    );
  });

  it("fails where csv-parse fails: a quote opened in the last record and never closed", () => {
    const tail = fc.array(fc.constantFrom(...VALUE_CHARS.filter((c) => c !== '"')), {
      maxLength: 8,
    });
    fc.assert(
      fc.property(files, tail, chunkings, (file, rest, fractions) => {
        const text = `${fileText({ ...file, finalEnding: true })}"${rest.join("")}`;
        const bytes = fileBytes(text, file.bom);
        assert.deepEqual(csvParseRead(csvParseInput(text, file.bom), file.delimiter), {
          failed: "CSV_QUOTE_NOT_CLOSED",
        });
        assert.deepEqual(readerRead(bytes, file.delimiter, cutsOf(fractions, bytes.length)), {
          failed: "UnterminatedQuote",
        });
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * Where the reader reads differently from csv-parse, on purpose: each input, with what each
 * gives. The property above never generates these.
 */
const DIFFERENCES: Array<{
  what: string;
  input: Buffer;
  reader: Read;
  csvParse: Read;
}> = [
  {
    what: "text after a closing quote is appended to the value (csv-parse keeps the quotes in it)",
    input: Buffer.from('a,b\n"ab"c,2\n'),
    reader: { header: ["a", "b"], records: [{ row: 1, values: ["abc", "2"] }] },
    csvParse: { header: ["a", "b"], records: [{ row: 1, values: ['"ab"c', "2"] }] },
  },
  {
    what: "a NUL character makes the row a row error (csv-parse keeps it in the value)",
    input: Buffer.from("a,b\n1,x\0y\n"),
    reader: { header: ["a", "b"], records: [{ row: 1, error: "NulByte" }] },
    csvParse: { header: ["a", "b"], records: [{ row: 1, values: ["1", "x\0y"] }] },
  },
  {
    what: "a UTF-16 BE byte order mark decides the encoding (csv-parse reads the bytes as UTF-8)",
    input: Buffer.from("\ufeffa,b\n1,2\n", "utf16le").swap16(),
    reader: { header: ["a", "b"], records: [{ row: 1, values: ["1", "2"] }] },
    csvParse: {
      header: ["\ufffd\ufffd\u0000a\u0000", "\u0000b\u0000"],
      records: [{ row: 1, values: ["\u00001\u0000", "\u00002\u0000"] }],
    },
  },
];

describe("the CSV reader's intended differences from csv-parse", () => {
  for (const { what, input, reader, csvParse } of DIFFERENCES) {
    it(what, () => {
      assert.deepEqual(readerRead(input, ",", []), reader);
      assert.deepEqual(csvParseRead(input, ","), csvParse);
    });
  }
});
