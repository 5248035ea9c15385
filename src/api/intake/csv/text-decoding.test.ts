import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { locateUtf8Error, locateUtf16Error } from "./text-decoding.ts";

// Bytes that are mostly well-formed, with the lead and continuation bytes that make UTF-8 tricky.
const utf8ish = fc
  .array(
    fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 3 }).map((s) => [...Buffer.from(s)]),
      fc
        .constantFrom(
          0x80,
          0x9f,
          0xa0,
          0xbf,
          0xc0,
          0xc1,
          0xc2,
          0xe0,
          0xed,
          0xef,
          0xf0,
          0xf4,
          0xf5,
          0xff,
        )
        .map((b) => [b]),
    ),
    { maxLength: 20 },
  )
  .map((parts) => Uint8Array.from(parts.flat()));

// Code units with many surrogates (a literal U+FFFD would look like a reported error).
const utf16ish = fc
  .record({
    units: fc.array(
      fc.oneof(fc.integer({ min: 0, max: 0xfffc }), fc.integer({ min: 0xd800, max: 0xdfff })),
      { maxLength: 12 },
    ),
    odd: fc.boolean(),
  })
  .map(({ units, odd }) => {
    const bytes = new Uint8Array(units.length * 2 + (odd ? 1 : 0));
    units.forEach((unit, i) => {
      bytes[2 * i] = unit & 0xff;
      bytes[2 * i + 1] = unit >> 8;
    });
    if (odd) bytes[bytes.length - 1] = 0x41;
    return bytes;
  });

/** What the WHATWG decoder says: the text before its first replacement character, if any. */
function firstReplacement(encoding: string, bytes: Uint8Array): string | undefined {
  const text = new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes, { stream: true });
  const at = text.indexOf("\ufffd");
  return at < 0 ? undefined : text.slice(0, at);
}

describe("locating malformed input", () => {
  it("finds the same first UTF-8 error as TextDecoder, or none where it sees none", () => {
    fc.assert(
      fc.property(utf8ish, (bytes) => {
        fc.pre(!Buffer.from(bytes).includes(Buffer.from("\ufffd")));
        const bad = locateUtf8Error(bytes);
        const expected = firstReplacement("utf-8", bytes);
        if (expected === undefined) assert.equal(bad, -1);
        else
          assert.equal(
            new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, bad)),
            expected,
          );
      }),
      { numRuns: 2000 },
    );
  });

  it("finds the same first UTF-16 error as TextDecoder, or none where it sees none", () => {
    fc.assert(
      fc.property(utf16ish, (bytes) => {
        const bad = locateUtf16Error(bytes, true);
        const expected = firstReplacement("utf-16le", bytes);
        if (expected === undefined) assert.equal(bad, -1);
        else {
          const before = new TextDecoder("utf-16le", { fatal: true, ignoreBOM: true }).decode(
            bytes.subarray(0, bad),
          );
          assert.equal(before, expected);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("points at the lead byte of a sequence that breaks off", () => {
    assert.equal(locateUtf8Error(Uint8Array.from([0x41, 0xe2, 0x82, 0x41])), 1);
    assert.equal(locateUtf8Error(Uint8Array.from([0x41, 0xe2, 0x82])), -1);
    assert.equal(locateUtf8Error(Uint8Array.from([0xed, 0xa0, 0x80])), 0);
  });
});
