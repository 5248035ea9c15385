// The CSV reader stands alone: its folder imports nothing from the rest of Sluice, so that it
// can be read, tested and benchmarked on its own.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { it } from "node:test";

it("imports only from its own folder, Node.js and packages", () => {
  const folder = new URL(".", import.meta.url);
  for (const file of readdirSync(folder).filter((name) => name.endsWith(".ts"))) {
    const source = readFileSync(new URL(file, folder), "utf8");
    for (const [, specifier] of source.matchAll(/\bfrom\s+"([^"]+)"/g)) {
      assert.ok(
        !specifier?.startsWith("..") && !specifier?.startsWith("/"),
        `${file} imports ${specifier}`,
      );
    }
  }
});
