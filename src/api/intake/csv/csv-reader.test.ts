import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SNIFF_BYTES } from "./byte-sniffing.ts";
import {
  type CsvHeader,
  type CsvReaderOptions,
  type CsvSummary,
  createCsvReader,
  type RowError,
} from "./csv-reader.ts";
import { MAX_HEADER_CHARS } from "./header-line.ts";
import { RAW_PREVIEW_CHARS } from "./record-tokenizer.ts";

type Call = ["header", CsvHeader] | ["row", number, string[]] | ["rowError", RowError];

const LIMITS = { maxColumns: 5, maxFieldBytes: 64, maxRowBytes: 160 };

function bytesOf(input: string | Uint8Array): Uint8Array {
  return typeof input === "string" ? new TextEncoder().encode(input) : input;
}

/** Reads the whole input in one push; a thrown CsvFormatError leaves `calls` as made so far. */
function read(
  input: string | Uint8Array,
  options: Partial<CsvReaderOptions> = {},
  calls: Call[] = [],
) {
  const reader = createCsvReader(
    { ...LIMITS, ...options },
    {
      header: (header) => calls.push(["header", header]),
      row: (row, values) => calls.push(["row", row, values]),
      rowError: (error) => calls.push(["rowError", error]),
    },
  );
  reader.push(bytesOf(input));
  const summary: CsvSummary = reader.end();
  return { calls, summary, rows: calls.filter((c) => c[0] === "row").map((c) => c[2]) };
}

function rowErrors(calls: Call[]): RowError[] {
  return calls.flatMap((call) => (call[0] === "rowError" ? [call[1]] : []));
}

function utf16(text: string, littleEndian: boolean): Uint8Array {
  const bytes = Buffer.from(`\ufeff${text}`, "utf16le");
  return littleEndian ? bytes : bytes.swap16();
}

const concat = (...parts: Array<string | Uint8Array | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));

describe("createCsvReader: empty files", () => {
  for (const [name, input] of [
    ["no bytes", new Uint8Array(0)],
    ["only a UTF-8 byte order mark", new Uint8Array([0xef, 0xbb, 0xbf])],
    ["only a UTF-16 byte order mark", new Uint8Array([0xff, 0xfe])],
    ["only whitespace", " \r\n\t\n  \n"],
  ] as const) {
    it(`rejects ${name} as EmptyFile`, () => {
      assert.throws(() => read(input), { name: "CsvFormatError", code: "EmptyFile" });
    });
  }
});

describe("createCsvReader: header without rows", () => {
  for (const [name, input] of [
    ["without a final newline", "a,b"],
    ["with a final newline", "a,b\n"],
    ["followed by blank lines", "a,b\r\n\r\n\n"],
  ]) {
    it(`rejects a header ${name} with 422 NoDataRows, after announcing the header`, () => {
      const calls: Call[] = [];
      assert.throws(() => read(input as string, {}, calls), { code: "NoDataRows" });
      assert.deepEqual(calls, [
        ["header", { columns: ["a", "b"], delimiter: ",", encoding: "utf-8" }],
      ]);
    });
  }
});

describe("createCsvReader: encodings", () => {
  it("strips a UTF-8 byte order mark from the first column name", () => {
    const { calls } = read("\ufeffid,name\n1,x\n");
    assert.deepEqual(calls[0], [
      "header",
      { columns: ["id", "name"], delimiter: ",", encoding: "utf-8" },
    ]);
  });

  for (const littleEndian of [true, false]) {
    const encoding = littleEndian ? "utf-16le" : "utf-16be";
    it(`transcodes ${encoding} with a byte order mark`, () => {
      const { calls, summary } = read(utf16('id;naïve 😀\r\n1;"a\nb"\r\n2;€\r\n', littleEndian));
      assert.deepEqual(calls, [
        ["header", { columns: ["id", "naïve 😀"], delimiter: ";", encoding }],
        ["row", 1, ["1", "a\nb"]],
        ["row", 2, ["2", "€"]],
      ]);
      assert.equal(summary.bytes, 2 + 2 * 'id;naïve 😀\r\n1;"a\nb"\r\n2;€\r\n'.length);
    });
  }

  it("rejects a lone UTF-16 surrogate with InvalidEncoding at its byte", () => {
    const bytes = concat(utf16("a,b\n1,", true), [0x00, 0xd8], utf16("x\n", true).subarray(2));
    assert.throws(() => read(bytes), {
      code: "InvalidEncoding",
      details: { byte: 14, line: 2, column: 3 },
    });
  });

  it("rejects invalid UTF-8 with 422 InvalidEncoding at the exact byte, after the rows before it", () => {
    const calls: Call[] = [];
    const bytes = concat("id,name\n1,ok\n2,caf", [0xe9], ",x\n");
    assert.throws(() => read(bytes, {}, calls), {
      code: "InvalidEncoding",
      details: { byte: 18, line: 3, column: 6 },
    });
    assert.deepEqual(calls.slice(1), [["row", 1, ["1", "ok"]]]);
  });

  it("counts the byte order mark in the offset of an invalid byte", () => {
    const bytes = concat([0xef, 0xbb, 0xbf], "a,b\n1,", [0xc0, 0x80], "\n");
    assert.throws(() => read(bytes), {
      code: "InvalidEncoding",
      details: { byte: 9, line: 2, column: 3 },
    });
  });

  it("points at the start of a UTF-8 sequence cut short by the end of the file", () => {
    const bytes = concat("a,b\n1,2\n3,", [0xe2, 0x82]);
    assert.throws(() => read(bytes), {
      code: "InvalidEncoding",
      details: { byte: 10, line: 3, column: 3 },
    });
  });

  it("decodes the same bytes as latin1 or windows-1252 when told to", () => {
    const bytes = concat("id,name\n1,caf", [0xe9], "\n2,", [0x80], "\n");
    assert.deepEqual(read(bytes, { encoding: "latin1" }).rows, [
      ["1", "café"],
      ["2", "\u0080"],
    ]);
    assert.deepEqual(read(bytes, { encoding: "windows-1252" }).rows, [
      ["1", "café"],
      ["2", "€"],
    ]);
  });

  it("lets a byte order mark override the encoding option", () => {
    const { calls } = read("\ufeffid\nné\n", { encoding: "windows-1252" });
    assert.deepEqual(calls, [
      ["header", { columns: ["id"], delimiter: ",", encoding: "utf-8" }],
      ["row", 1, ["né"]],
    ]);
  });
});

describe("createCsvReader: binary files", () => {
  const signatures: Array<[string, number[]]> = [
    ["PNG", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
    ["ZIP", [0x50, 0x4b, 0x03, 0x04]],
    ["gzip", [0x1f, 0x8b, 0x08, 0x00]],
    ["ELF", [0x7f, 0x45, 0x4c, 0x46, 0x02]],
    ["PDF", [...Buffer.from("%PDF-1.7\n")]],
  ];
  for (const [format, magic] of signatures) {
    it(`rejects ${format} data with 415 NotCsv`, () => {
      assert.throws(() => read(concat(magic, "a,b\n1,2\n")), { code: "NotCsv" });
    });
  }

  it("rejects a first block full of control bytes with 415 NotCsv", () => {
    const block = concat(
      "id,x\n",
      new Array(200).fill(0).map((_, i) => i % 7),
    );
    assert.throws(() => read(block, { encoding: "latin1" }), { code: "NotCsv" });
  });

  it("reports a NUL inside one field of a text file on its row instead", () => {
    const { calls, summary } = read("id,name\n1,a\0b\n2,c\n");
    assert.deepEqual(rowErrors(calls), [
      {
        row: 1,
        line: 2,
        code: "NulByte",
        message: 'Row 1: field 2 ("name") holds a NUL character.',
        raw: "1,a\0b",
      },
    ]);
    assert.deepEqual(summary, { ...summary, rows: 2, goodRows: 1, rowErrors: 1 });
  });

  it("tolerates a few control bytes spread over a text file", () => {
    const lines = Array.from({ length: 40 }, (_, i) => (i % 6 === 0 ? `${i},\u0001` : `${i},x`));
    const { summary } = read(`id,v\n${lines.join("\n")}\n`);
    assert.equal(summary.rows, 40);
  });
});

describe("createCsvReader: quotes", () => {
  it("rejects an unterminated quote with 422 UnterminatedQuote on the line it opened", () => {
    assert.throws(() => read('a,b\n1,2\n3,"x\n4,5\n'), {
      code: "UnterminatedQuote",
      details: { line: 3, column: 3 },
    });
  });

  it("rejects an unterminated quote in the header the same way", () => {
    assert.throws(() => read('a,"b\n1,2\n'), {
      code: "UnterminatedQuote",
      details: { line: 1, column: 3 },
    });
  });

  it("keeps a stray quote inside an unquoted field literally", () => {
    assert.deepEqual(read('a,b,c\nab"c,x"",  "y"\n').rows, [['ab"c', 'x""', '  "y"']]);
  });

  it("appends text that follows a closing quote", () => {
    assert.deepEqual(read('a,b\n"ab"c,"x""y"z\n').rows, [["abc", 'x"yz']]);
  });

  it("reads embedded newlines, doubled quotes, mixed line endings, blank lines and no final newline", () => {
    const input = 'id,text\r\n1,"line\r\none"\n\n2,"say ""hi"""\r\r\n3,"a\rb"\r4,\n\n\n5,last';
    const { calls, summary } = read(input);
    assert.deepEqual(calls.slice(1), [
      ["row", 1, ["1", "line\r\none"]],
      ["row", 2, ["2", 'say "hi"']],
      ["row", 3, ["3", "a\rb"]],
      ["row", 4, ["4", ""]],
      ["row", 5, ["5", "last"]],
    ]);
    assert.deepEqual(summary, {
      rows: 5,
      goodRows: 5,
      rowErrors: 0,
      blankLines: 4,
      bytes: input.length,
      header: { columns: ["id", "text"], delimiter: ",", encoding: "utf-8" },
    });
  });

  it("gives row errors the physical line their record starts on", () => {
    const { calls } = read('id,text\n1,"a\nb\r\nc\rd"\n\n2\r\n3,"\r\n"\r4\n');
    assert.deepEqual(
      rowErrors(calls).map((e) => [e.row, e.line]),
      [
        [2, 7],
        [4, 10],
      ],
    );
  });
});

describe("createCsvReader: header", () => {
  it("rejects duplicate, empty and control-character names together, naming each", () => {
    assert.throws(
      () => read("id,name,,id, ,x\u0007y\n1,2,3,4,5,6\n", { maxColumns: 10 }),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.deepEqual(
          { ...error },
          {
            name: "CsvFormatError",
            code: "InvalidHeader",
            details: { line: 1, column: 3, names: ["", "id", " ", "x\u0007y"] },
          },
        );
        assert.equal(
          error.message,
          'Invalid header on line 1: column 3 has no name; column 4 repeats "id" from column 1; ' +
            'column 5 has no name; column 6 "x\\u0007y" holds a control character.',
        );
        return true;
      },
    );
  });

  it("rejects the header as soon as its line ends, once the first block has been sniffed", () => {
    const reader = createCsvReader(LIMITS, { header() {}, row() {}, rowError() {} });
    reader.push(bytesOf("a,a\n"));
    assert.throws(() => reader.push(bytesOf("1,2\n".repeat(SNIFF_BYTES / 4))), {
      code: "InvalidHeader",
      details: { line: 1, column: 2, names: ["a"] },
    });
  });

  it("rejects a name longer than maxFieldBytes", () => {
    assert.throws(() => read(`a,${"b".repeat(65)}\n1,2\n`), {
      code: "InvalidHeader",
      details: { line: 1, column: 2, names: [`${"b".repeat(40)}…`] },
    });
  });

  it("rejects more than maxColumns columns with 422 TooManyColumns and accepts exactly maxColumns", () => {
    assert.throws(() => read("a,b,c,d,e,f\n1,2,3,4,5,6\n"), {
      code: "TooManyColumns",
    });
    assert.equal(read("a,b,c,d,e\n1,2,3,4,5\n").summary.goodRows, 1);
  });

  it("rejects a header line longer than MAX_HEADER_CHARS", () => {
    assert.throws(() => read(`"${"a".repeat(MAX_HEADER_CHARS)}\n1\n`), {
      code: "HeaderTooLarge",
    });
  });

  it("skips whitespace-only lines before the header and counts them as blank", () => {
    const { calls, summary } = read("\n  \r\n\t\nid,v\n1,2\n");
    assert.deepEqual(calls[0], [
      "header",
      { columns: ["id", "v"], delimiter: ",", encoding: "utf-8" },
    ]);
    assert.equal(summary.blankLines, 3);
    assert.equal(rowErrors(read("\n\nid,v\n1\n").calls)[0]?.line, 4);
  });
});

describe("createCsvReader: delimiter", () => {
  for (const delimiter of [";", "\t", "|"]) {
    it(`detects ${JSON.stringify(delimiter)} from the header line`, () => {
      const { calls } = read(
        `${["a", "b", "c"].join(delimiter)}\n${["1", "2,5", "3"].join(delimiter)}`,
      );
      assert.deepEqual(calls, [
        ["header", { columns: ["a", "b", "c"], delimiter, encoding: "utf-8" }],
        ["row", 1, ["1", "2,5", "3"]],
      ]);
    });
  }

  it("lets the comma win ties", () => {
    assert.deepEqual(read("a,b;c\n1,2;3\n").summary.header.columns, ["a", "b;c"]);
  });

  it("counts only candidates outside quotes", () => {
    assert.deepEqual(read('"a;b;c",d\n1,2\n').summary.header.columns, ["a;b;c", "d"]);
  });

  it("uses the delimiter option over detection", () => {
    assert.deepEqual(read("a,b;c\n1,2;3\n", { delimiter: ";" }).rows, [["1,2", "3"]]);
  });
});

describe("createCsvReader: row errors", () => {
  it("sets aside rows with too few or too many fields and keeps reading", () => {
    const { calls, summary } = read("a,b,c\n1,2\n1,2,3\n1,2,3,4\n");
    assert.deepEqual(calls.slice(1), [
      [
        "rowError",
        {
          row: 1,
          line: 2,
          code: "FieldCount",
          message: "Row 1 has 2 fields; the header has 3.",
          raw: "1,2",
        },
      ],
      ["row", 2, ["1", "2", "3"]],
      [
        "rowError",
        {
          row: 3,
          line: 4,
          code: "FieldCount",
          message: "Row 3 has 4 fields; the header has 3.",
          raw: "1,2,3,4",
        },
      ],
    ]);
    assert.deepEqual([summary.rows, summary.goodRows, summary.rowErrors], [3, 1, 2]);
  });

  it("sets aside a field over maxFieldBytes, counting UTF-8 bytes", () => {
    const { calls } = read(
      `id,v\n1,${"é".repeat(32)}\n2,${"é".repeat(33)}\n3,"${"x".repeat(65)}"\n`,
    );
    assert.deepEqual(
      calls
        .slice(1)
        .map((c) => (c[0] === "rowError" ? [c[1].row, c[1].code, c[1].message] : [c[1]])),
      [
        [1],
        [2, "FieldTooLarge", 'Row 2: field 2 ("v") is longer than 64 bytes.'],
        [3, "FieldTooLarge", 'Row 3: field 2 ("v") is longer than 64 bytes.'],
      ],
    );
  });

  it("sets aside a row whose fields add up past maxRowBytes, counting UTF-8 bytes", () => {
    const field = (c: string, n: number) => Array.from({ length: 3 }, () => c.repeat(n)).join(",");
    const { calls } = read(
      `a,b,c\n${field("x", 50)}\n${field("x", 54)}\n${field("é", 30)}\n${field("é", 26)}\n`,
    );
    assert.deepEqual(
      calls
        .slice(1)
        .map((c) => (c[0] === "rowError" ? [c[1].row, c[1].code, c[1].message] : [c[1]])),
      [
        [1],
        [2, "RowTooLarge", "Row 2 is longer than 160 bytes."],
        [3, "RowTooLarge", "Row 3 is longer than 160 bytes."],
        [4],
      ],
    );
  });

  it("holds the header line to MAX_HEADER_CHARS, not to maxRowBytes", () => {
    const names = Array.from({ length: 5 }, (_, i) => `${i}`.padEnd(40, "n"));
    const { calls } = read(`${names.join(",")}\n1,2,3,4,5\n`);
    assert.deepEqual(calls[0]?.[1], { columns: names, delimiter: ",", encoding: "utf-8" });
    assert.deepEqual(calls[1], ["row", 1, ["1", "2", "3", "4", "5"]]);
  });

  it("quotes a long column name by its start in a row error", () => {
    const name = "n".repeat(5_000);
    const [error] = rowErrors(
      read(`${name}\n\u0000\n`, { maxFieldBytes: 10_000, maxRowBytes: 10_000 }).calls,
    );
    assert.equal(error?.message, `Row 1: field 1 ("${"n".repeat(40)}…") holds a NUL character.`);
  });

  it("truncates the raw text of a rejected row", () => {
    const [error] = rowErrors(read(`a,b\n${"x".repeat(500)}\n`).calls);
    assert.equal(error?.raw, "x".repeat(RAW_PREVIEW_CHARS));
  });
});

describe("createCsvReader: lifecycle", () => {
  it("repeats the first error on later calls and refuses pushes after end", () => {
    const sink = { header() {}, row() {}, rowError() {} };
    const failed = createCsvReader(LIMITS, sink);
    let first: unknown;
    try {
      failed.push(bytesOf('a\n"'));
      failed.end();
    } catch (error) {
      first = error;
    }
    assert.throws(
      () => failed.push(bytesOf("x")),
      (error) => error === first,
    );

    const done = createCsvReader(LIMITS, sink);
    done.push(bytesOf("a\n1\n"));
    done.end();
    assert.throws(() => done.push(bytesOf("2\n")), /already ended/);
  });
});
