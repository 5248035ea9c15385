import assert from "node:assert/strict";
import { test } from "node:test";
import { sanitizeFilename } from "./uploads-service.ts";

test("a client's file name keeps no path, no control characters and no more than 255 characters", () => {
  assert.equal(sanitizeFilename("../../etc/passwd"), "passwd");
  assert.equal(sanitizeFilename("C:\\Users\\me\\sales.csv"), "sales.csv");
  assert.equal(sanitizeFilename("bad\u0007\r\nname.csv"), "badname.csv");
  assert.equal(sanitizeFilename("a\u0085b\u009b2J\u2028c\u2029.csv"), "ab2Jc.csv");
  assert.equal(sanitizeFilename("invoice\u202Evsc.exe"), "invoicevsc.exe");
  assert.equal(sanitizeFilename("\u2066x\u2069\u200F.csv"), "x.csv");
  assert.equal(sanitizeFilename("Zürich 東京 😀.csv"), "Zürich 東京 😀.csv");
  assert.equal(sanitizeFilename(`${"x".repeat(300)}.csv`)?.length, 255);
  // Cut by characters, never inside a surrogate pair.
  assert.equal(sanitizeFilename("😀".repeat(300)), "😀".repeat(255));
  assert.equal(sanitizeFilename("\u0001"), null);
  assert.equal(sanitizeFilename(null), null);
});
