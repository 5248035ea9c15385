// Lands one batch in PostgreSQL in one transaction, so that a redelivered batch lands nothing
// twice. This is the hottest path of the system, so it speaks to pg directly: the rows go in
// with COPY, which costs PostgreSQL about half what an INSERT of the same rows does.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Faults } from "../faults.ts";
import type { Progress as ViewProgress } from "../status/status-store.ts";
import type { TargetSnapshot } from "../targets/target-definition.ts";
import { ROWS_OPEN, rowsAsCopyText } from "../uploads/batch-layout.ts";
import type { BatchHeaders } from "../uploads/batch-message.ts";
import type { UploadStatus } from "../uploads/upload-status.ts";
import {
  KeyTaken,
  landInTarget,
  RowRefused,
  refusedByTable,
  type TargetWay,
} from "./target-rows.repository.ts";
import { landingLockName } from "./uploads.repository.ts";
import { allowLongerAnswers } from "./watched-client.ts";

export type LandOutcome =
  /** `refused`: rows of a target that its table refused (a key taken, a constraint), now row errors. */
  | { kind: "landed"; progress: Progress; refused: number }
  | { kind: "duplicate" }
  /** The upload takes no batch any more; `purged` when its data was asked to be deleted. */
  | { kind: "skipped"; status: UploadStatus; purged: boolean }
  | { kind: "unknown-upload" };

/** What the live view takes (status-store.ts), and what the worker decides on besides. */
export type Progress = ViewProgress & { batchesTotal: number; justCompleted: boolean };

/**
 * The commit was sent but its answer never came (the connection fell during it): the batch
 * may have landed. `xid` is the transaction's id, for asking PostgreSQL later whether it did.
 */
export class CommitUnsettled extends Error {
  override name = "CommitUnsettled";
  readonly xid: string;

  constructor(xid: string, cause: unknown) {
    super(`the commit's answer was lost: ${cause instanceof Error ? cause.message : cause}`, {
      cause,
    });
    this.xid = xid;
  }
}

/** Whether the transaction `xid` committed; false once PostgreSQL no longer knows it. */
export async function committed(pool: pg.Pool, xid: string): Promise<boolean> {
  const { rows } = await pool.query<{ committed: boolean }>(
    "select pg_xact_status($1::xid8) is not distinct from 'committed' as committed",
    [xid],
  );
  return rows[0]?.committed === true;
}

const ROWS_OPEN_BYTES = Buffer.from(ROWS_OPEN);

/** Uploads in these states take no more rows. */
const CLOSED: UploadStatus[] = ["cancelled", "rejected"];

/** Runs `work`, which opens and commits its own transaction; a failure rolls it back. */
async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (err) {
    await client.query("rollback").catch((rollbackErr: Error) => {
      broken = rollbackErr;
    });
    throw err;
  } finally {
    // A connection that cannot even roll back is not given to the next batch.
    client.release(broken);
  }
}

/** The result of statement `index` of a query string holding several. */
function statementResult<R extends pg.QueryResultRow>(result: unknown, index: number) {
  return (result as pg.QueryResult<R>[])[index] as pg.QueryResult<R>;
}

// Each round trip to PostgreSQL costs the two sides CPU in wake-ups, as much as COPYing dozens
// of rows (docs/capacity.md); so a batch takes four: open and claim, COPY (two), count and
// commit. Statements that travel together use the simple protocol, which
// takes no parameters: the values are integers and an id checked as a UUID on arrival,
// quoted by escapeLiteral all the same.

export async function landBatch(
  pool: pg.Pool,
  batch: BatchHeaders,
  body: Buffer,
  statementTimeoutMs: number,
  faults: Faults,
): Promise<LandOutcome> {
  let way: TargetWay = "copy";
  for (;;) {
    try {
      return await landOnce(pool, batch, body, statementTimeoutMs, faults, way);
    } catch (err) {
      // Its transaction rolled back, claim and all: the batch lands again from the start, the
      // next way (target-rows.repository.ts).
      if (err instanceof KeyTaken && way === "copy") way = "staged";
      else if (err instanceof RowRefused && way !== "rowByRow") way = "rowByRow";
      else throw err;
    }
  }
}

/** `way`: how a target's rows go in (target-rows.repository.ts); JSON rows ignore it. */
async function landOnce(
  pool: pg.Pool,
  batch: BatchHeaders,
  body: Buffer,
  statementTimeoutMs: number,
  faults: Faults,
  way: TargetWay,
): Promise<LandOutcome> {
  return inTransaction(pool, async (client) => {
    // PostgreSQL answers within the statement timeout, or fails the statement itself.
    allowLongerAnswers(client, statementTimeoutMs);
    const id = client.escapeLiteral(batch.uploadId);
    // The primary key makes a concurrent second delivery wait for the first, then find it;
    // so whoever claims the batch here is alone in landing its rows. The shared lock, taken
    // in a statement of its own so that the claim's snapshot is newer, lets a cancel wait for
    // this transaction and makes it see a cancel that committed first.
    const opened = await client.query(
      `begin;
       set local statement_timeout = ${Math.trunc(statementTimeoutMs)};
       select pg_advisory_xact_lock_shared(hashtextextended(${client.escapeLiteral(landingLockName(batch.uploadId))}, 0));
       with upload as (
         select status, purge_requested_at is not null as purged, target from uploads where id = ${id}),
       claim as (
         insert into upload_batches (upload_id, seq, rows, row_errors)
         select ${id}, ${Math.trunc(batch.seq)}, ${Math.trunc(batch.rows)}, ${Math.trunc(batch.rowErrors)}
         from upload where status not in (${CLOSED.map((c) => `'${c}'`).join(", ")}) and not purged
         on conflict do nothing returning seq)
       select (select status from upload) as status, (select purged from upload) as purged,
         (select target from upload) as target, exists (select from claim) as claimed,
         pg_current_xact_id()::text as xid`,
    );
    const { status, purged, target, claimed, xid } = statementResult<{
      status: UploadStatus | null;
      purged: boolean | null;
      target: TargetSnapshot | null;
      claimed: boolean;
      xid: string;
    }>(opened, 3).rows[0] ?? { status: null, purged: null, target: null, claimed: false, xid: "" };
    if (!status || purged || CLOSED.includes(status) || !claimed) {
      await client.query("rollback");
      if (!status) return { kind: "unknown-upload" } as const;
      // A purged upload's data is gone for good: a batch still retrying lands nothing.
      if (purged || CLOSED.includes(status)) {
        return { kind: "skipped", status, purged: purged === true } as const;
      }
      return { kind: "duplicate" } as const;
    }

    let landing = { withCommit: "", refused: 0 };
    if (batch.rows > 0 && target) {
      landing = await landInTarget(client, target, batch.uploadId, body, way);
    } else if (batch.rows > 0) {
      const copy = client.query(
        copyFrom("copy upload_rows (upload_id, row_number, data) from stdin"),
      );
      await pipeline(Readable.from([rowsAsCopyText(batch.uploadId, body)]), copy);
    }
    if (batch.rowErrors > 0) {
      // The errors are in the batch's head: PostgreSQL need not parse its rows.
      const open = body.indexOf(ROWS_OPEN_BYTES);
      await client.query(
        `insert into row_errors (upload_id, row_number, line, code, message)
         select $1::uuid, (e ->> 'row')::bigint, (e ->> 'line')::bigint, e ->> 'code', e ->> 'message'
         from jsonb_array_elements($2::jsonb -> 'errors') as e`,
        [batch.uploadId, `${body.toString("utf8", 0, open < 0 ? body.length : open)}"rows":[]}`],
      );
    }
    const landed = Math.trunc(batch.rows) - landing.refused;

    // Last, so the row lock on the upload is held only for the commit, which goes with it.
    const counted = await commitAnswer(
      xid,
      faults,
      client.query(
        `${landing.withCommit}
         update uploads set
         batches_landed = batches_landed + 1,
         rows_landed = rows_landed + ${landed},
         row_errors = row_errors + ${landing.refused},
         status = case
           when status not in ('queued', 'processing') then status
           when batches_landed + 1 = batches_total then 'completed'
           else 'processing' end,
         completed_at = case
           when status in ('queued', 'processing') and batches_landed + 1 = batches_total then now()
           else completed_at end,
         -- Every batch of a completed upload was published, whether or not its api could
         -- record the last of them (a database restart under that write, then the upload
         -- completing before the api's next attempt).
         batches_published = case
           when status in ('queued', 'processing') and batches_landed + 1 = batches_total then batches_total
           else batches_published end,
         last_progress_at = now(),
         updated_at = now()
       where id = ${id}
       returning
         status,
         batches_landed as "batchesLanded",
         batches_total as "batchesTotal",
         rows_landed as "rowsLanded",
         coalesce(completed_at = now(), false) as "justCompleted";
       commit`,
      ),
    );
    return {
      kind: "landed",
      progress: statementResult<Progress>(counted, landing.withCommit ? 1 : 0).rows[0] as Progress,
      refused: landing.refused,
    } as const;
  });
}

/** The answer to the statements that end with the commit, or CommitUnsettled without one. */
async function commitAnswer<T>(xid: string, faults: Faults, answer: Promise<T>): Promise<T> {
  try {
    const result = await answer;
    if (faults.reached("commit-answer-lost")) throw new Error("Connection terminated unexpectedly");
    return result;
  } catch (err) {
    // The table refused a row (the upsert or skip statement sent with the commit, or a
    // deferred constraint at the commit): PostgreSQL answered, and nothing committed.
    if (refusedByTable(err)) throw new RowRefused((err as Error).message, { cause: err });
    throw new CommitUnsettled(xid, err);
  }
}
