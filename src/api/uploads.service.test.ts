import assert from "node:assert/strict";
import { test } from "node:test";
import { sanitizeFilename } from "./uploads.service.ts";

test("a client's file name keeps no path, no control characters and no more than 255 characters", () => {
  assert.equal(sanitizeFilename("../../etc/passwd"), "passwd");
  assert.equal(sanitizeFilename("C:\\Users\\me\\sales.csv"), "sales.csv");
  assert.equal(sanitizeFilename("bad\u0007\r\nname.csv"), "badname.csv");
  assert.equal(sanitizeFilename(`${"x".repeat(300)}.csv`)?.length, 255);
  assert.equal(sanitizeFilename("\u0001"), null);
  assert.equal(sanitizeFilename(null), null);
});
