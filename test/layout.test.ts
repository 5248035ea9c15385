// The layout that README's "Layout" section describes, held to: one naming scheme for files, every
// repository in src/core/db, and no query built outside one.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";

const ROOT = join(import.meta.dirname, "..");

/** The dotted roles a file name may carry before `.ts`, and nothing else. */
const ROLES = [
  "routes",
  "repository",
  "main",
  "test",
  "fault",
  "cluster",
  "image",
  "schemathesis",
  "bench",
];
const KEBAB = "[a-z0-9]+(?:-[a-z0-9]+)*";
const TYPESCRIPT_NAME = new RegExp(`^${KEBAB}(?:\\.(?:${ROLES.join("|")}))?\\.ts$`);
const OTHER_NAME = new RegExp(`^${KEBAB}\\.[a-z]+$`);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? files(path) : [relative(ROOT, path)];
  });
}

const all = ["src", "test", "bench", "scripts"].flatMap((dir) => files(join(ROOT, dir)));

test("every file and folder name is kebab-case, with a dotted role only from the fixed set", () => {
  const wrong = all.filter((path) => {
    const parts = path.split("/");
    const name = parts.pop() as string;
    const folders = parts.filter((folder) => !new RegExp(`^${KEBAB}$`).test(folder));
    return folders.length > 0 || !(name.endsWith(".ts") ? TYPESCRIPT_NAME : OTHER_NAME).test(name);
  });
  assert.deepEqual(wrong, []);
});

test("repositories live in src/core/db", () => {
  const elsewhere = all.filter(
    (path) => path.endsWith(".repository.ts") && !path.startsWith("src/core/db/"),
  );
  assert.deepEqual(elsewhere, []);
});

test("no query is built outside src/core/db: not in a route, a service or a program", () => {
  const builders = /\.(?:selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)\(/;
  const building = all.filter(
    (path) =>
      path.startsWith("src/") &&
      path.endsWith(".ts") &&
      !path.endsWith(".test.ts") &&
      !path.startsWith("src/core/db/") &&
      builders.test(readFileSync(join(ROOT, path), "utf8")),
  );
  assert.deepEqual(building, []);
});
