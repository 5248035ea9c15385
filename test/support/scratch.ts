// Temporary folders a test file makes, removed after its tests, so that runs leave nothing in
// the system's temporary folder.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

const made: string[] = [];

// Registered at import, so on the root: after every test of the file that imports it.
after(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new folder `sluice-<name>-<random>` under the system's temporary folder. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
  made.push(dir);
  return dir;
}
