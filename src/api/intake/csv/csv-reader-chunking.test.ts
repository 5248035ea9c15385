import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SNIFF_BYTES } from "./byte-sniffing.ts";
import { type CsvReaderOptions, createCsvReader, type Delimiter } from "./csv-reader.ts";

const LIMITS = { maxColumns: 6, maxFieldBytes: 24, maxRowBytes: 100 };

/** Every sink call and the outcome, as plain data, for one way of cutting `bytes` into chunks. */
function transcript(
  bytes: Uint8Array,
  cuts: number[],
  options: Partial<CsvReaderOptions> = {},
): unknown[] {
  const log: unknown[] = [];
  const reader = createCsvReader(
    { ...LIMITS, ...options },
    {
      header: (header) => log.push(["header", header]),
      row: (row, values) => log.push(["row", row, values]),
      rowError: (error) => log.push(["rowError", error]),
    },
  );
  try {
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      // A copy, so that a reader holding on to a pushed chunk would be caught.
      reader.push(bytes.slice(from, cut));
      from = cut;
    }
    log.push(["summary", reader.end()]);
  } catch (error) {
    if (!(error instanceof Error) || !("details" in error)) throw error;
    log.push(["error", { ...error, message: error.message }]);
  }
  return log;
}

function everyN(length: number, size: number): number[] {
  return Array.from({ length: Math.ceil(length / size) - 1 }, (_, i) => (i + 1) * size).filter(
    (c) => c < length,
  );
}

const bytes = (...parts: Array<string | number[] | Uint8Array>) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Uint8Array.from(p))));
const utf16 = (text: string, littleEndian: boolean) => {
  const encoded = Buffer.from(`\ufeff${text}`, "utf16le");
  return littleEndian ? encoded : encoded.swap16();
};

// Only text past the first SNIFF_BYTES reaches the tokenizer chunk by chunk, so each sample
// puts what it exercises behind filler rows or blank lines.
function filler(columns: number, newline = "\n"): string {
  let text = "";
  for (let i = 0; text.length <= SNIFF_BYTES; i++) {
    text +=
      Array.from({ length: columns }, (_, k) => (k === 0 ? String(i % 100) : "f")).join(";") +
      newline;
  }
  return text;
}
const blankLines = (newline: string) => newline.repeat(Math.ceil(SNIFF_BYTES / newline.length) + 1);

const HEADER = 'id;naïve 😀;"x"\r\n';
const BODY =
  '1;"a\r\nb";"say ""hi"""\r2;€;ab"c\n\n3;\0;z\r\n4;ü;"😀😀"""\r\n5;toolong-toolong-toolong-toolong;x\n' +
  '6\r\n7;"line\r\nbreak";"\r\n"\r\n8;' +
  `${"x".repeat(250)}\n9;"${"😀".repeat(7)}";y`;
const MIXED = HEADER + filler(3, "\r\n") + BODY;

const SAMPLES: Record<string, Uint8Array> = {
  "UTF-8 with multi-byte characters, CRLF, escapes and row errors": bytes(MIXED),
  "UTF-8 with a byte order mark and blank lines first": bytes(
    [0xef, 0xbb, 0xbf],
    blankLines("\r\n"),
    MIXED,
  ),
  "UTF-16 LE": utf16(MIXED, true),
  "UTF-16 BE": utf16(MIXED, false),
  "CR line endings and blank lines first": bytes(`${blankLines("\r")}  \ra|b|c\r1|2|3\r\r4|5|6`),
  "invalid UTF-8 after some rows": bytes(
    `a,b\r\n${filler(2)}1,é\r\n2,`,
    [0xe2, 0x82, 0x41],
    "\n3,4\n",
  ),
  "UTF-8 cut short at the end": bytes(`a,b\n${filler(2)}1,`, [0xf0, 0x9f, 0x98]),
  "a lone surrogate in UTF-16": bytes(utf16(`a,b\n${filler(2)}1,`, true), [0x3d, 0xd8, 0x41, 0x00]),
  "an odd byte at the end of UTF-16": bytes(utf16(`a,b\n${filler(2)}1,2\n`, false), [0x41]),
  "an unterminated quote": bytes(`a,b\n${filler(2)}1,"2\r\n3,4\n`),
  "an invalid header": bytes(blankLines("\n"), "a,b,a,\n1,2,3,4\n"),
  "too many columns": bytes(blankLines("\r\n"), "a,b,c,d,e,f,g\n1\n"),
  "a PNG signature": bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a,b\n"),
  "control bytes": bytes(
    "a,b\n",
    Array.from({ length: 64 }, (_, i) => i % 8),
  ),
  "control bytes after the first block": bytes(
    `a;b\n${filler(2)}1;`,
    Array.from({ length: 999 }, () => 0),
    "\n",
  ),
  "only a header": bytes(blankLines("\r\n"), "a\tb\r\n\r\n"),
  "whitespace only": bytes(blankLines(" \r\n\t")),
  "latin1 bytes": bytes(`a;b\n${filler(2)}1;caf`, [0xe9, 0x80], "\n"),
};

describe("createCsvReader: chunking", () => {
  for (const [name, sample] of Object.entries(SAMPLES)) {
    const options: Partial<CsvReaderOptions> = name.startsWith("latin1")
      ? { encoding: "latin1" }
      : {};
    const whole = transcript(sample, [], options);

    it(`reads ${name} the same in chunks of 1, 2, 3, 7 and 64 KiB bytes`, () => {
      for (const size of [1, 2, 3, 7, 64 * 1024]) {
        assert.deepEqual(
          transcript(sample, everyN(sample.length, size), options),
          whole,
          `chunks of ${size}`,
        );
      }
    });

    it(`reads ${name} the same when cut at random points`, () => {
      const cuts = fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, sample.length - 1) }), {
        maxLength: sample.length,
      });
      fc.assert(
        fc.property(cuts, (points) => {
          assert.deepEqual(
            transcript(
              sample,
              points.filter((p) => p < sample.length).sort((a, b) => a - b),
              options,
            ),
            whole,
          );
        }),
        { numRuns: 200 },
      );
    });
  }
});

// Records written by a conforming writer (plus stray quotes, which are kept literally) come
// back unchanged, whatever the line endings, encoding and chunking.
describe("createCsvReader: round trip", () => {
  const value = fc.string({
    unit: fc.constantFrom("a", "b", " ", ",", ";", "\t", "|", '"', "\n", "\r", "é", "€", "😀"),
    maxLength: 6,
  });
  const table = fc.integer({ min: 1, max: 4 }).chain((columns) =>
    fc.record({
      delimiter: fc.constantFrom<Delimiter>(",", ";", "\t", "|"),
      names: fc.uniqueArray(fc.stringMatching(/^[a-z]{1,4}$/), {
        minLength: columns,
        maxLength: columns,
      }),
      rows: fc.array(fc.array(value, { minLength: columns, maxLength: columns }), {
        minLength: 1,
        maxLength: 8,
      }),
      newline: fc.constantFrom("\n", "\r\n", "\r"),
      quoteAll: fc.boolean(),
      finalNewline: fc.boolean(),
      encoding: fc.constantFrom("utf-8", "utf-8-bom", "utf-16le", "utf-16be"),
      cutAt: fc.array(fc.nat(), { maxLength: 40 }),
    }),
  );

  function write(values: string[], delimiter: string, quoteAll: boolean): string {
    return values
      .map((v) => {
        const mustQuote =
          v.startsWith('"') ||
          v.includes(delimiter) ||
          v.includes("\n") ||
          v.includes("\r") ||
          values.length === 1;
        return quoteAll || mustQuote ? `"${v.replaceAll('"', '""')}"` : v;
      })
      .join(delimiter);
  }

  function encode(text: string, encoding: string): Uint8Array {
    if (encoding === "utf-16le") return utf16(text, true);
    if (encoding === "utf-16be") return utf16(text, false);
    return Buffer.from(encoding === "utf-8-bom" ? `\ufeff${text}` : text);
  }

  it("gives back every written record, numbered in order", () => {
    fc.assert(
      fc.property(table, (t) => {
        const rows = [
          ...Array.from({ length: SNIFF_BYTES / 4 }, () => t.names.map(() => "f")),
          ...t.rows,
        ];
        const lines = [
          t.names.join(t.delimiter),
          ...rows.map((r) => write(r, t.delimiter, t.quoteAll)),
        ];
        const input = encode(lines.join(t.newline) + (t.finalNewline ? t.newline : ""), t.encoding);
        const tail = encode(
          t.rows.map((r) => write(r, t.delimiter, t.quoteAll)).join(t.newline),
          "utf-16le",
        ).length;
        const cuts = [...new Set(t.cutAt.map((c) => input.length - 1 - (c % tail)))].sort(
          (a, b) => a - b,
        );
        // A single column has no delimiter in its header to detect.
        const options =
          t.names.length === 1
            ? { delimiter: t.delimiter, maxFieldBytes: 100 }
            : { maxFieldBytes: 100 };
        const log = transcript(input, cuts, options);
        assert.deepEqual(
          log.slice(1, -1),
          rows.map((r, i) => ["row", i + 1, r]),
        );
        assert.deepEqual(log[0], [
          "header",
          {
            columns: t.names,
            delimiter: t.delimiter,
            encoding: t.encoding === "utf-8-bom" ? "utf-8" : t.encoding,
          },
        ]);
      }),
      { numRuns: 300 },
    );
  });
});
