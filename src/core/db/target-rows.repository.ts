// Lands a batch's rows in the upload's target, inside the transaction that claims the batch
// (rows.repository.ts), so that a redelivered batch lands nothing twice there too. The rows
// go in with COPY, whose input functions convert each value as a cast from text would; the
// api has already kept out every row whose values do not convert (target-values.ts).
//
// A batch lands one of three ways, each taken only when the one before met a refusal, which
// rolls the transaction back, claim and all, so that the batch lands again from the start:
// - copy: insert COPYs straight into the table; upsert and skip COPY into the session's
//   staging table, then one INSERT … SELECT with the conflict clause, sent with the commit.
// - staged (insert with a key, when a key was found taken): through the staging table,
//   where every row whose key is taken (in the table, or by an earlier row of the batch)
//   becomes a row error instead.
// - rowByRow (when a constraint other than the key refused a row: a unique index the target
//   does not name, NOT NULL, CHECK, a foreign key): the mode's statement a range of rows at a
//   time, each refused row a row error (rowByRowSql).
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { batchHead, stagingTable, targetCopy } from "../targets/target-copy.ts";
import { quoteIdent, type TargetSnapshot } from "../targets/target-definition.ts";
import { duplicateKeysSql, fromStagingSql, rowByRowSql, tableName } from "../targets/target-sql.ts";

export type TargetWay = "copy" | "staged" | "rowByRow";

/** The COPY into an insert target met a key that exists: land the batch through staging. */
export class KeyTaken extends Error {
  override name = "KeyTaken";
}

/** A constraint of the table refused a row the way taken could not make a row error of. */
export class RowRefused extends Error {
  override name = "RowRefused";
}

const UNIQUE_VIOLATION = "23505";

/** An error of class 23, integrity constraint violation: the table refused a row. */
export function refusedByTable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("23");
}

export type TargetLanding = Readonly<{
  /** Statements to run with the batch's count and commit, in the same round trip. */
  withCommit: string;
  /** Rows the table refused (a key taken, a constraint): row errors, not landed. */
  refused: number;
}>;

async function copyIn(client: pg.PoolClient, into: string, text: Buffer): Promise<void> {
  await pipeline(Readable.from([text]), client.query(copyFrom(`copy ${into} from stdin`)));
}

/** Runs `work`; a refusal by the table becomes RowRefused, for the next way to take. */
async function refusable<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (refusedByTable(err)) throw new RowRefused((err as Error).message, { cause: err });
    throw err;
  }
}

export async function landInTarget(
  client: pg.PoolClient,
  target: TargetSnapshot,
  uploadId: string,
  body: Buffer,
  way: TargetWay,
): Promise<TargetLanding> {
  const copy = targetCopy(target, batchHead(body));
  const names = copy.columns.map((c) => c.name);
  if (target.mode === "insert" && way === "copy") {
    const into = `${tableName(target.schema, target.table)} (${names.map(quoteIdent).join(", ")})`;
    try {
      await copyIn(client, into, copy.text(body, false));
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION && target.key.length > 0) {
        throw new KeyTaken((err as Error).message, { cause: err });
      }
      if (refusedByTable(err)) throw new RowRefused((err as Error).message, { cause: err });
      throw err;
    }
    return { withCommit: "", refused: 0 };
  }
  const stage = stagingTable(copy);
  // Deferred constraints are checked at each statement, so that a refusal is a row's.
  await client.query(
    way === "rowByRow" ? `set constraints all immediate; ${stage.create}` : stage.create,
  );
  await copyIn(client, stage.name, copy.text(body, true));
  if (way === "rowByRow") {
    const result = (await client.query(
      rowByRowSql(target, names, stage.name, uploadId),
    )) as unknown as pg.QueryResult<{ refused: number }>[];
    return { withCommit: "", refused: result[1]?.rows[0]?.refused ?? 0 };
  }
  if (target.mode !== "insert") {
    return { withCommit: `${fromStagingSql(target, names, stage.name)};`, refused: 0 };
  }
  const { rows } = await refusable(
    client.query<{ duplicates: number }>(duplicateKeysSql(target, names, stage.name, uploadId)),
  );
  return { withCommit: "", refused: rows[0]?.duplicates ?? 0 };
}
