// The programs' database user as docs/kubernetes.md creates it ("Database users"), its SQL
// run as written, so that the checks prove what the docs tell users to do.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./program.ts";

/** The password the documented block gives the user. */
export const DOCUMENTED_PASSWORD = "change-me";

/** The documented block, for `database` and the user `role`. */
export function documentedGrants(database: string, role: string): string {
  const doc = readFileSync(join(ROOT, "docs", "kubernetes.md"), "utf8");
  const block = /### Database users[\s\S]*?```sql\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block, "docs/kubernetes.md has the grants under ### Database users");
  assert.ok(
    block.includes(`'${DOCUMENTED_PASSWORD}'`),
    "the documented password is the one named here",
  );
  return block
    .replaceAll(/\bsluice_app\b/g, role)
    .replaceAll(/ON DATABASE sluice\b/g, `ON DATABASE "${database}"`);
}
