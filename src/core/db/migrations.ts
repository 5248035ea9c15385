// Schema migrations, kept in code so the compiled programs carry them.
import { type Kysely, sql } from "kysely";
import { type Migration, Migrator } from "kysely/migration";

const migrations: Record<string, Migration> = {
  "2026-11-28-001-uploads": {
    async up(db: Kysely<unknown>) {
      await sql`
        create table uploads (
          id uuid primary key,
          tenant text not null,
          filename text,
          status text not null,
          bytes bigint not null default 0,
          sha256 text,
          encoding text,
          delimiter text,
          columns jsonb,
          rows_total bigint,
          row_errors bigint not null default 0,
          blank_lines bigint,
          batches_total integer,
          batches_published integer not null default 0,
          batches_landed integer not null default 0,
          rows_landed bigint not null default 0,
          error_code text,
          error_message text,
          error_details jsonb,
          stalled boolean not null default false,
          stalled_reason text,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          queued_at timestamptz,
          completed_at timestamptz,
          last_progress_at timestamptz not null default now()
        )`.execute(db);
      await sql`create index uploads_tenant_created_idx on uploads (tenant, created_at desc, id)`.execute(
        db,
      );
      await sql`create index uploads_active_idx on uploads (status) where status in ('queued', 'processing')`.execute(
        db,
      );
      await sql`
        create table upload_batches (
          upload_id uuid not null references uploads (id) on delete cascade,
          seq integer not null,
          rows integer not null,
          row_errors integer not null,
          landed_at timestamptz not null default now(),
          primary key (upload_id, seq)
        )`.execute(db);
      // No foreign key: the batch record, written in the same transaction, already vouches
      // for the upload, and a per-row key check would cost on the hottest path.
      await sql`
        create table upload_rows (
          upload_id uuid not null,
          row_number bigint not null,
          data jsonb not null,
          primary key (upload_id, row_number)
        )`.execute(db);
      await sql`
        create table row_errors (
          upload_id uuid not null,
          row_number bigint not null,
          line bigint not null,
          code text not null,
          message text not null,
          primary key (upload_id, row_number)
        )`.execute(db);
    },
  },
  "2026-11-28-002-unfinished-uploads-index": {
    // The controller reads unfinished and stalled uploads at every interval; without this
    // index each read would scan every upload ever received.
    async up(db: Kysely<unknown>) {
      await sql`
        create index uploads_unfinished_idx on uploads (status)
        where status in ('received', 'validating', 'queued', 'processing') or stalled`.execute(db);
    },
  },
  "2026-11-28-003-uploads-in-progress-by-tenant": {
    async up(db: Kysely<unknown>) {
      // Every new upload counts its tenant's uploads in progress; finished ones stay out.
      await sql`create index uploads_tenant_in_progress_idx on uploads (tenant) where status in ('received', 'validating', 'queued', 'processing')`.execute(
        db,
      );
    },
  },
  "2026-11-28-004-rows-as-json": {
    async up(db: Kysely<unknown>) {
      // json keeps each row's text as landed, keys in the file's column order, and costs COPY
      // about a quarter less than jsonb, which parses and re-sorts every object. Cast to jsonb
      // to index or compare rows.
      await sql`alter table upload_rows alter column data type json using data::json`.execute(db);
    },
  },
  "2026-12-03-005-idempotency-keys": {
    async up(db: Kysely<unknown>) {
      // A retried POST with the same key finds the upload its first attempt made; the unique
      // index keeps two concurrent attempts of one key from both making one.
      await sql`alter table uploads add column idempotency_key text`.execute(db);
      await sql`
        create unique index uploads_tenant_idempotency_key_idx on uploads (tenant, idempotency_key)
        where idempotency_key is not null`.execute(db);
    },
  },
  "2026-12-03-006-purges": {
    async up(db: Kysely<unknown>) {
      // A purge is recorded when asked for and when done, so one cut short finishes later.
      await sql`alter table uploads add column purge_requested_at timestamptz`.execute(db);
      await sql`alter table uploads add column purged_at timestamptz`.execute(db);
      await sql`
        create index uploads_purge_unfinished_idx on uploads (id)
        where purge_requested_at is not null and purged_at is null`.execute(db);
      // The controller's retention pass reads the oldest uploads not purged at every interval.
      await sql`create index uploads_unpurged_created_idx on uploads (created_at) where purged_at is null`.execute(
        db,
      );
    },
  },
  "2026-12-03-007-publishing-leases": {
    async up(db: Kysely<unknown>) {
      // The api replica publishing an upload, and until when: one that stops renewing (it
      // died) leaves the upload to a replica that shares its stored batches.
      await sql`alter table uploads add column publisher text`.execute(db);
      await sql`alter table uploads add column publishing_until timestamptz`.execute(db);
    },
  },
  "2026-12-03-008-targets": {
    async up(db: Kysely<unknown>) {
      // A tenant's named targets: its own typed tables and how a file's rows land in them.
      await sql`
        create table targets (
          tenant text not null,
          name text not null,
          schema_name text not null,
          definition jsonb not null,
          not_null jsonb not null,
          version integer not null default 1,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          primary key (tenant, name)
        )`.execute(db);
      // The target as it was when the upload was accepted: the api checks its rows and the
      // worker lands them by this copy, whatever becomes of the target meanwhile.
      await sql`alter table uploads add column target jsonb`.execute(db);
    },
  },
};

// biome-ignore lint/suspicious/noExplicitAny: migrations run before any typed schema exists
type UntypedDb = Kysely<any>;

const migrator = (db: UntypedDb) =>
  new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: "sluice_migrations",
    migrationLockTableName: "sluice_migrations_lock",
  });

/** The migrations not yet applied, by name; reads the schema only, creates nothing. */
export async function pendingMigrations(db: UntypedDb): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

export async function migrateToLatest(db: UntypedDb): Promise<void> {
  const { error, results } = await migrator(db).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(`Database migration ${failed ?? ""} failed`, { cause: error });
  }
}
