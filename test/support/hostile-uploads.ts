// fast-check arbitraries for upload requests a careless or hostile client might send:
// random bytes, CSV-like text in several encodings, valid files and mutations of them
// (truncated, bytes inserted or flipped, BOMs, NULs, huge fields), raw or multipart.
import fc from "fast-check";

export type HostileUpload = {
  body: Uint8Array;
  query: string;
  transport: "raw" | "multipart" | "broken-multipart";
  contentType: string;
  filename: string;
};

const BOMS = {
  "utf-8": [0xef, 0xbb, 0xbf],
  "utf-16le": [0xff, 0xfe],
  "utf-16be": [0xfe, 0xff],
} as const;

function encode(
  text: string,
  encoding: "utf-8" | "utf-16le" | "utf-16be" | "latin1",
  bom: boolean,
) {
  const prefix = bom && encoding !== "latin1" ? Buffer.from(BOMS[encoding]) : Buffer.alloc(0);
  const body =
    encoding === "utf-8"
      ? Buffer.from(text, "utf8")
      : encoding === "latin1"
        ? Buffer.from(text, "latin1")
        : encoding === "utf-16le"
          ? Buffer.from(text, "utf16le")
          : Buffer.from(text, "utf16le").swap16();
  return Buffer.concat([prefix, body]);
}

const quote = (field: string) =>
  /[",;\t|\r\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;

const specials = fc.constantFrom(
  ",",
  ";",
  "\t",
  "|",
  '"',
  '""',
  "\n",
  "\r\n",
  "\r",
  "\0",
  "\ufeff",
  "\u2028",
  "\u0085",
  "\x1b[31m",
  '=HYPERLINK("x")',
  "__proto__",
  "constructor",
  "'; drop table uploads; --",
);
const token = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
  { weight: 6, arbitrary: specials },
);

/** Text made of CSV's own characters and worse, in any encoding, with or without a BOM. */
const csvLikeText = fc
  .tuple(
    fc.array(token, { maxLength: 120 }),
    fc.constantFrom("utf-8", "utf-16le", "utf-16be", "latin1") as fc.Arbitrary<
      "utf-8" | "utf-16le" | "utf-16be" | "latin1"
    >,
    fc.boolean(),
  )
  .map(([tokens, encoding, bom]) => encode(tokens.join(""), encoding, bom));

const field = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 10 }),
  specials,
);

/** A well-formed file: unique header names, every row as wide as the header. */
export const validCsv = fc
  .integer({ min: 1, max: 6 })
  .chain((columns) =>
    fc.tuple(
      fc.uniqueArray(fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 8 }), {
        minLength: columns,
        maxLength: columns,
      }),
      fc.array(fc.array(field, { minLength: columns, maxLength: columns }), {
        minLength: 1,
        maxLength: 40,
      }),
      fc.constantFrom(",", ";", "\t", "|"),
      fc.constantFrom("\n", "\r\n"),
    ),
  )
  .map(([header, rows, delimiter, newline]) =>
    Buffer.from([header, ...rows].map((r) => r.map(quote).join(delimiter)).join(newline) + newline),
  );

type Mutation = (bytes: Buffer) => Buffer;
const at = (bytes: Buffer, position: number) => (bytes.length === 0 ? 0 : position % bytes.length);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map(
    (n): Mutation =>
      (b) =>
        b.subarray(0, at(b, n)),
  ),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(
    ([n, inserted]): Mutation =>
      (b) =>
        Buffer.concat([b.subarray(0, at(b, n)), inserted, b.subarray(at(b, n))]),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(
    ([n, value]): Mutation =>
      (b) => {
        const copy = Buffer.from(b);
        if (copy.length > 0) copy[at(copy, n)] = value;
        return copy;
      },
  ),
  fc.tuple(fc.nat(), fc.constantFrom('"', "\0", "\r", "\n", ",", '"\n"')).map(
    ([n, inserted]): Mutation =>
      (b) =>
        Buffer.concat([b.subarray(0, at(b, n)), Buffer.from(inserted), b.subarray(at(b, n))]),
  ),
  fc.constantFrom(...Object.values(BOMS)).map(
    (bom): Mutation =>
      (b) =>
        Buffer.concat([Buffer.from(bom), b]),
  ),
  // A field far past MAX_FIELD_BYTES, or a body past MAX_UPLOAD_BYTES.
  fc.tuple(fc.nat(), fc.integer({ min: 1_000, max: 100_000 }), fc.constantFrom("x", '"', "é")).map(
    ([n, size, char]): Mutation =>
      (b) =>
        Buffer.concat([
          b.subarray(0, at(b, n)),
          Buffer.from(char.repeat(size)),
          b.subarray(at(b, n)),
        ]),
  ),
);

const mutatedCsv = fc
  .tuple(validCsv, fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([bytes, mutations]) => mutations.reduce<Buffer>((b, mutate) => mutate(b), bytes));

export const hostileBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
  { weight: 3, arbitrary: csvLikeText },
  { weight: 2, arbitrary: validCsv },
  { weight: 5, arbitrary: mutatedCsv },
);

export const hostileUpload: fc.Arbitrary<HostileUpload> = fc.record({
  body: hostileBody,
  query: fc.constantFrom(
    "",
    "",
    "",
    "?encoding=latin1",
    "?encoding=windows-1252",
    "?encoding=utf-16",
    "?delimiter=tab",
    "?delimiter=%3B",
    "?delimiter=%00",
    "?delimiter=,&delimiter=|",
  ),
  transport: fc.constantFrom("raw", "raw", "multipart", "broken-multipart"),
  contentType: fc.constantFrom(
    "text/csv",
    "text/csv; charset=utf-8",
    "application/octet-stream",
    "text/plain",
    "",
    "application/json",
  ),
  filename: fc.string({ unit: "binary", maxLength: 300 }),
});

/** The fetch options that send `upload` as its transport says. */
export function requestFor(upload: HostileUpload): RequestInit {
  const bytes = new Uint8Array(upload.body);
  if (upload.transport === "multipart") {
    const form = new FormData();
    form.append("file", new Blob([bytes], { type: "text/csv" }), upload.filename || "f.csv");
    return { method: "POST", body: form };
  }
  if (upload.transport === "broken-multipart") {
    return {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=sluice-boundary" },
      body: bytes,
    };
  }
  return {
    method: "POST",
    headers: upload.contentType === "" ? {} : { "content-type": upload.contentType },
    body: bytes,
  };
}
