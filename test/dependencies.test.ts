// The production image installs `dependencies` only (`npm ci --omit=dev`): they must be
// exactly the packages the built programs import. Development helpers loaded on demand
// outside production (the local S3 server) and the benchmark's reference parser are dev
// dependencies.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import { test } from "node:test";

const ROOT = join(import.meta.dirname, "..");

function productionSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return productionSources(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Packages a file imports at run time: `import ... from`, `export ... from`, `import()`. */
function importedPackages(source: string): string[] {
  const specifiers = [
    ...source.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+"([^"]+)"/gms),
    ...source.matchAll(/^\s*import\s+"([^"]+)"/gm),
    ...source.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((match) => match[1] ?? "");
  return specifiers
    .filter((s) => !s.startsWith(".") && !s.startsWith("node:") && !builtinModules.includes(s))
    .map((s) =>
      s
        .split("/")
        .slice(0, s.startsWith("@") ? 2 : 1)
        .join("/"),
    );
}

test("the production dependencies are exactly the packages the programs import", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const importers = new Map<string, string[]>();
  for (const file of productionSources(join(ROOT, "src"))) {
    for (const name of importedPackages(readFileSync(file, "utf8"))) {
      importers.set(name, [...(importers.get(name) ?? []), relative(ROOT, file)]);
    }
  }
  const declared = Object.keys(pkg.dependencies).sort();
  const imported = [...importers.keys()].sort();
  assert.deepEqual(
    declared.filter((name) => !importers.has(name)),
    [],
    "in dependencies, imported by no program: move them to devDependencies",
  );
  assert.deepEqual(
    imported.filter((name) => !declared.includes(name)),
    [],
    "imported by a program, missing from dependencies",
  );
});
