// Streaming byte-to-text decoding that can say at which byte a strict encoding first broke.

export type TextEncoding = "utf-8" | "utf-16le" | "utf-16be" | "latin1" | "windows-1252";

/** Thrown by a strict decoder; `text` is the well-formed text before `offset` not returned yet. */
export class MalformedInput extends Error {
  override name = "MalformedInput";
  readonly offset: number;
  readonly text: string;

  constructor(offset: number, text: string) {
    super(`malformed input at byte ${offset}`);
    this.offset = offset;
    this.text = text;
  }
}

export type StreamDecoder = {
  /** Decodes the next bytes; offsets count from the first byte given to this decoder. */
  decode(bytes: Uint8Array): string;
  end(): string;
};

export function createStreamDecoder(encoding: TextEncoding): StreamDecoder {
  if (encoding === "latin1") {
    // WHATWG maps the label latin1 to windows-1252; Buffer's latin1 is true ISO-8859-1.
    return {
      decode: (bytes) =>
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1"),
      end: () => "",
    };
  }
  if (encoding === "windows-1252") {
    const decoder = new TextDecoder("windows-1252");
    return { decode: (bytes) => decoder.decode(bytes), end: () => "" };
  }
  return createStrictDecoder(encoding);
}

/** Index of the first byte in `bytes` that does not start a well-formed character; -1 when none. */
type Locate = (bytes: Uint8Array) => number;
/** How many trailing bytes of a well-formed stream are an incomplete character. */
type Incomplete = (last: Uint8Array, total: number) => number;

function createStrictDecoder(encoding: "utf-8" | "utf-16le" | "utf-16be"): StreamDecoder {
  const decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: true });
  const locate: Locate =
    encoding === "utf-8"
      ? locateUtf8Error
      : (bytes) => locateUtf16Error(bytes, encoding === "utf-16le");
  const incomplete: Incomplete =
    encoding === "utf-8"
      ? incompleteUtf8
      : (last, total) => incompleteUtf16(last, total, encoding === "utf-16le");
  // The decoder keeps at most three bytes of a character cut by a chunk boundary; these are
  // the last three bytes seen, enough to rebuild what it holds when it reports an error.
  const last = new Uint8Array(3);
  let lastLength = 0;
  let total = 0;

  function held(): Uint8Array {
    const length = incomplete(last.subarray(0, lastLength), total);
    return last.slice(lastLength - length, lastLength);
  }

  function remember(bytes: Uint8Array): void {
    if (bytes.length >= 3) {
      last.set(bytes.subarray(bytes.length - 3));
      lastLength = 3;
      return;
    }
    const keep = Math.min(lastLength, 3 - bytes.length);
    last.copyWithin(0, lastLength - keep, lastLength);
    last.set(bytes, keep);
    lastLength = keep + bytes.length;
  }

  return {
    decode(bytes) {
      let text: string;
      try {
        text = decoder.decode(bytes, { stream: true });
      } catch {
        const before = held();
        const joined = new Uint8Array(before.length + bytes.length);
        joined.set(before);
        joined.set(bytes, before.length);
        const bad = locate(joined);
        const at = bad < 0 ? joined.length : bad;
        const valid = new TextDecoder(encoding, { ignoreBOM: true }).decode(joined.subarray(0, at));
        throw new MalformedInput(total - before.length + at, valid);
      }
      remember(bytes);
      total += bytes.length;
      return text;
    },
    end() {
      try {
        return decoder.decode();
      } catch {
        throw new MalformedInput(total - held().length, "");
      }
    },
  };
}

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}

/** Follows the WHATWG UTF-8 decoder: overlongs, surrogates and values past U+10FFFF are errors. */
export function locateUtf8Error(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] as number;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      if (next === undefined) return -1;
      const min = k === 1 ? low : 0x80;
      const max = k === 1 ? high : 0xbf;
      if (next < min || next > max) return i;
    }
    i += length;
  }
  return -1;
}

function incompleteUtf8(last: Uint8Array): number {
  for (let k = 1; k <= last.length; k++) {
    const byte = last[last.length - k] as number;
    if (isContinuation(byte)) continue;
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > k ? k : 0;
  }
  return 0;
}

function unitAt(bytes: Uint8Array, i: number, littleEndian: boolean): number {
  const a = bytes[i] as number;
  const b = bytes[i + 1] as number;
  return littleEndian ? a | (b << 8) : (a << 8) | b;
}

const isHighSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLowSurrogate = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

export function locateUtf16Error(bytes: Uint8Array, littleEndian: boolean): number {
  let i = 0;
  while (i + 1 < bytes.length) {
    const unit = unitAt(bytes, i, littleEndian);
    if (isLowSurrogate(unit)) return i;
    if (isHighSurrogate(unit)) {
      if (i + 3 >= bytes.length) return -1;
      if (!isLowSurrogate(unitAt(bytes, i + 2, littleEndian))) return i;
      i += 4;
    } else i += 2;
  }
  return -1;
}

function incompleteUtf16(last: Uint8Array, total: number, littleEndian: boolean): number {
  const odd = total % 2;
  const end = last.length - odd;
  if (end < 2) return odd;
  return isHighSurrogate(unitAt(last, end - 2, littleEndian)) ? odd + 2 : odd;
}
