// Decides from the first bytes of an upload whether it is text at all and which byte order mark it carries.

/** How many leading bytes are inspected before any row is read. */
export const SNIFF_BYTES = 4096;

export type BomEncoding = "utf-8" | "utf-16le" | "utf-16be";

const BOMS: ReadonlyArray<{ encoding: BomEncoding; bytes: readonly number[] }> = [
  { encoding: "utf-8", bytes: [0xef, 0xbb, 0xbf] },
  { encoding: "utf-16le", bytes: [0xff, 0xfe] },
  { encoding: "utf-16be", bytes: [0xfe, 0xff] },
];

// Only signatures that no plausible CSV header starts with: each holds a byte that is not
// printable text, or is a long ASCII string that names its format.
const SIGNATURES: ReadonlyArray<{ format: string; bytes: readonly number[] }> = [
  { format: "a PNG image", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { format: "a JPEG image", bytes: [0xff, 0xd8, 0xff] },
  { format: "a GIF image", bytes: [0x47, 0x49, 0x46, 0x38] },
  { format: "a PDF document", bytes: [0x25, 0x50, 0x44, 0x46, 0x2d] },
  { format: "a ZIP archive (or an Office document)", bytes: [0x50, 0x4b, 0x03, 0x04] },
  { format: "a ZIP archive", bytes: [0x50, 0x4b, 0x05, 0x06] },
  { format: "a ZIP archive", bytes: [0x50, 0x4b, 0x07, 0x08] },
  { format: "gzip-compressed data", bytes: [0x1f, 0x8b] },
  { format: "bzip2-compressed data", bytes: [0x42, 0x5a, 0x68] },
  { format: "xz-compressed data", bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { format: "zstd-compressed data", bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { format: "a 7-Zip archive", bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
  { format: "an ELF executable", bytes: [0x7f, 0x45, 0x4c, 0x46] },
  { format: "a Mach-O executable", bytes: [0xcf, 0xfa, 0xed, 0xfe] },
  { format: "a Mach-O executable", bytes: [0xce, 0xfa, 0xed, 0xfe] },
  { format: "a WebAssembly module", bytes: [0x00, 0x61, 0x73, 0x6d] },
  { format: "a legacy Office document", bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1] },
  { format: "an SQLite database", bytes: [...Buffer.from("SQLite format 3\0", "latin1")] },
  { format: "UTF-32 text, which is not supported", bytes: [0xff, 0xfe, 0x00, 0x00] },
  { format: "UTF-32 text, which is not supported", bytes: [0x00, 0x00, 0xfe, 0xff] },
];

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
}

export function detectBom(head: Uint8Array): { encoding: BomEncoding; length: number } | undefined {
  const bom = BOMS.find((candidate) => startsWith(head, candidate.bytes));
  return bom && { encoding: bom.encoding, length: bom.bytes.length };
}

// Bytes that text files practically never hold: C0 controls other than TAB, LF, VT, FF, CR and ESC.
function isSuspiciousControl(byte: number): boolean {
  return byte < 0x20 && (byte < 0x09 || (byte > 0x0d && byte !== 0x1b));
}

/**
 * Says why `head` (the first SNIFF_BYTES of the file, or all of it) is not CSV, or undefined.
 * A known signature decides at once. Otherwise a single-byte or UTF-8 file is binary when at
 * least 8 of its first bytes, and more than 1 in 20 of them, are control bytes; a stray NUL
 * in an otherwise textual file stays below that and is reported on its row instead. UTF-16
 * (known only from its byte order mark) is exempt, as half of its bytes are NUL.
 */
export function binaryFormat(head: Uint8Array, utf16: boolean): string | undefined {
  const signature = SIGNATURES.find((candidate) => startsWith(head, candidate.bytes));
  if (signature) return signature.format;
  if (utf16) return undefined;
  let controls = 0;
  for (const byte of head) if (isSuspiciousControl(byte)) controls++;
  if (controls >= 8 && controls * 20 > head.length) {
    return `binary data (${controls} of its first ${head.length} bytes are control bytes; UTF-16 text needs a byte order mark)`;
  }
  return undefined;
}
