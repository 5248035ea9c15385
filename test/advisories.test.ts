// The table of docs/advisories.md stays true: no version package-lock.json installs in
// production falls in an affected range it lists. The registry's audit endpoint cannot be
// reached from here; this catches a lockfile change that brings a listed version back.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "./support/stack.ts";

type Lock = { packages: Record<string, { version?: string; dev?: boolean }> };

/** Each `name`'s versions installed by `npm ci --omit=dev`. */
function productionVersions(lock: Lock): Map<string, Set<string>> {
  const versions = new Map<string, Set<string>>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path || entry.dev || !entry.version) continue;
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    versions.set(name, (versions.get(name) ?? new Set()).add(entry.version));
  }
  return versions;
}

const numbers = (version: string) => version.split("-")[0]?.split(".").map(Number) ?? [];

function compare(a: string, b: string): number {
  const [x, y] = [numbers(a), numbers(b)];
  for (let i = 0; i < 3; i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** `>=8.0.0 <8.4.0`, `<10.2.0`, `=4.4.2`: every bound must hold. */
function inRange(version: string, range: string): boolean {
  return range.split(/\s+/).every((bound) => {
    const [, operator, limit] = /^(>=|<=|<|>|=)(\d+\.\d+\.\d+)$/.exec(bound) ?? [];
    assert.ok(operator && limit, `unreadable bound ${bound} in ${range}`);
    const order = compare(version, limit);
    return { ">=": order >= 0, "<=": order <= 0, "<": order < 0, ">": order > 0, "=": order === 0 }[
      operator
    ];
  });
}

test("the range reader places versions as npm would", () => {
  assert.equal(inRange("8.3.9", ">=8.0.0 <8.4.0"), true);
  assert.equal(inRange("8.4.0", ">=8.0.0 <8.4.0"), false);
  assert.equal(inRange("7.9.0", ">=8.0.0 <8.4.0"), false);
  assert.equal(inRange("10.10.0", "<10.2.0"), false);
  assert.equal(inRange("4.4.2", "=4.4.2"), true);
});

test("no production package is installed in an affected range docs/advisories.md lists", () => {
  const doc = readFileSync(join(ROOT, "docs", "advisories.md"), "utf8");
  const rows = [...doc.matchAll(/^\| `([^`]+)` +\|[^|]+\|[^|]+\| `([^`]+)` +\|/gm)].map(
    ([, name, range]) => ({ name: name as string, range: range as string }),
  );
  assert.ok(rows.length >= 10, `only ${rows.length} advisories read from the table`);
  const installed = productionVersions(
    JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")),
  );
  const affected: string[] = [];
  for (const { name, range } of rows) {
    const versions = installed.get(name);
    assert.ok(versions, `${name} is not a production package any more: update the table`);
    for (const version of versions) {
      if (inRange(version, range)) affected.push(`${name}@${version} (${range})`);
    }
  }
  assert.deepEqual(affected, []);
});
