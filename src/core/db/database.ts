// The PostgreSQL schema as kysely sees it, and the one way programs open it.
import type { ColumnType, Generated } from "kysely";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { TargetDefinition, TargetSnapshot } from "../targets/target-definition.ts";
import type { UploadStatus } from "../uploads/upload-status.ts";
import { createWatchedPool, type Patience } from "./watched-client.ts";

// PostgreSQL returns bigint as text; every count here fits a JavaScript number.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface UploadsTable {
  id: string;
  tenant: string;
  filename: string | null;
  status: UploadStatus;
  bytes: Generated<number>;
  sha256: string | null;
  encoding: string | null;
  delimiter: string | null;
  columns: ColumnType<string[] | null, string | null, string | null>;
  rows_total: number | null;
  row_errors: Generated<number>;
  blank_lines: number | null;
  batches_total: number | null;
  batches_published: Generated<number>;
  batches_landed: Generated<number>;
  rows_landed: Generated<number>;
  error_code: string | null;
  error_message: string | null;
  error_details: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  stalled: Generated<boolean>;
  stalled_reason: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  queued_at: Timestamp | null;
  completed_at: Timestamp | null;
  last_progress_at: Generated<Date>;
  /** The client's Idempotency-Key, while it still names this upload. */
  idempotency_key: ColumnType<string | null, string | null | undefined, string | null>;
  /** Set when the upload's data was asked to be deleted; it takes no batch from then on. */
  purge_requested_at: Timestamp | null;
  /** Set once its rows, row errors and S3 objects are gone. */
  purged_at: Timestamp | null;
  /** The api replica that publishes the upload's batches, while its lease runs. */
  publisher: ColumnType<string | null, string | null | undefined, string | null>;
  /** When the publisher's lease lapses unless renewed. */
  publishing_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** The target the rows land in, as it was when the upload was accepted; null for JSON rows. */
  target: ColumnType<TargetSnapshot | null, string | null | undefined, string | null>;
}

export interface UploadBatchesTable {
  upload_id: string;
  seq: number;
  rows: number;
  row_errors: number;
  landed_at: Generated<Date>;
}

export interface UploadRowsTable {
  upload_id: string;
  row_number: number;
  data: ColumnType<Record<string, string>, string, never>;
}

export interface RowErrorsTable {
  upload_id: string;
  row_number: number;
  line: number;
  code: string;
  message: string;
}

export interface TargetsTable {
  tenant: string;
  name: string;
  schema_name: string;
  definition: ColumnType<TargetDefinition, string, string>;
  not_null: ColumnType<string[], string, string>;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface Database {
  uploads: UploadsTable;
  upload_batches: UploadBatchesTable;
  upload_rows: UploadRowsTable;
  row_errors: RowErrorsTable;
  targets: TargetsTable;
}

export type Db = Kysely<Database>;

/** The typed query builder, and the pool under it for what kysely does not do (COPY). */
export type Postgres = Readonly<{ db: Db; pool: pg.Pool }>;

export function createDatabase(
  connectionString: string,
  patience: Patience,
  onConnectionError: (err: Error) => void,
  poolSize = 10,
): Postgres {
  const pool = createWatchedPool(
    { connectionString, max: poolSize, application_name: "sluice" },
    patience,
  );
  // A connection dies when PostgreSQL restarts. The pool replaces it on next use, and the
  // query in flight fails and is retried; without listeners the error would end the process.
  pool.on("error", onConnectionError);
  pool.on("connect", (client) => client.on("error", onConnectionError));
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), pool };
}
