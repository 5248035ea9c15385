// Lands a batch's rows in the upload's target, inside the transaction that claims the batch
// (rows.repository.ts), so that a redelivered batch lands nothing twice there too. One
// statement: PostgreSQL reads the batch's JSON once, takes each column's value by its place in
// the file's header, casts it and applies the conflict clause. The api has already kept out
// every row whose values do not convert (target-values.ts), so the casts meet none.
import type pg from "pg";
import { ROWS_OPEN } from "../core/batch-layout.ts";
import type { TargetSnapshot } from "../core/targets/target-definition.ts";
import { landingSql } from "../core/targets/target-sql.ts";

const ROWS_OPEN_BYTES = Buffer.from(ROWS_OPEN);

/** The batch's columns: the file's header, named once before its rows. */
function headerOf(body: Buffer): string[] {
  const open = body.indexOf(ROWS_OPEN_BYTES);
  if (open < 0) throw new Error("batch has no rows section");
  const head = JSON.parse(`${body.toString("utf8", 0, open)}"rows":[]}`) as { columns?: unknown };
  if (!Array.isArray(head.columns) || !head.columns.every((c) => typeof c === "string")) {
    throw new Error("batch has no list of columns");
  }
  return head.columns;
}

export async function landInTarget(
  client: pg.PoolClient,
  target: TargetSnapshot,
  body: Buffer,
): Promise<void> {
  await client.query(landingSql(target, headerOf(body)), [body.toString("utf8")]);
}
