// Every file that repeats the configuration's list or the V8 heap flags says exactly what
// src/core/config-variables.ts and src/core/program/node-options.ts declare: each variable, its
// default, its meaning and its place in the chart.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { generated } from "../scripts/config-docs.ts";

const root = join(import.meta.dirname, "..");

for (const [path, expected] of generated()) {
  test(`${path} says what the declared configuration says`, () => {
    const actual = readFileSync(join(root, path), "utf8");
    const actualLines = actual.split("\n");
    const expectedLines = expected.split("\n");
    const first = expectedLines.findIndex((line, i) => line !== actualLines[i]);
    assert.ok(
      actual === expected,
      `${path} differs at line ${first + 1}:\n  has:      ${actualLines[first]}\n  declared: ${expectedLines[first]}\nrun npm run docs:config`,
    );
  });
}
