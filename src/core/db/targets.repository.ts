// A tenant's targets, and the checks of the table each one names: made if it does not exist,
// otherwise held to the definition (columns and their types, the key's unique index, NOT NULL
// columns the mapping would leave empty).
import { type Selectable, sql, type Transaction } from "kysely";
import {
  quoteIdent,
  type TargetDefinition,
  type TargetSnapshot,
} from "../targets/target-definition.ts";
import { CATALOG_TYPES, createTableSql, tableName } from "../targets/target-sql.ts";
import { valueCheck } from "../targets/target-values.ts";
import type { FileTarget } from "../targets/targets-file.ts";
import type { Database, Db, TargetsTable } from "./database.ts";

export type TargetRecord = TargetSnapshot &
  Readonly<{ createdAt: Date; updatedAt: Date; tenant: string }>;

export type SaveOutcome =
  | { kind: "saved"; target: TargetRecord; created: boolean; tableCreated: boolean }
  | { kind: "invalid"; problems: string[] };

function toRecord(row: Selectable<TargetsTable>): TargetRecord {
  return {
    ...row.definition,
    tenant: row.tenant,
    name: row.name,
    schema: row.schema_name,
    version: row.version,
    notNull: row.not_null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

type CatalogColumn = {
  name: string;
  type: string;
  not_null: boolean;
  has_default: boolean;
  identity: string;
  generated: string;
};

/** What is wrong with an existing table for this definition, and its NOT NULL mapped columns. */
async function checkTable(
  tx: Transaction<Database>,
  schema: string,
  definition: TargetDefinition,
): Promise<{ problems: string[]; notNull: string[] }> {
  const { rows: columns } = await sql<CatalogColumn>`
    select attname as name, format_type(atttypid, atttypmod) as type, attnotnull as not_null,
      atthasdef as has_default, attidentity::text as identity, attgenerated::text as generated
    from pg_attribute
    where attrelid = ${tableName(schema, definition.table)}::regclass and attnum > 0 and not attisdropped`.execute(
    tx,
  );
  const byName = new Map(columns.map((c) => [c.name, c]));
  const problems: string[] = [];
  const mapped = new Set(definition.columns.map((c) => c.name));
  for (const column of definition.columns) {
    const found = byName.get(column.name);
    if (!found) {
      problems.push(`table ${definition.table} has no column ${column.name}`);
    } else if (found.type !== CATALOG_TYPES[column.type]) {
      problems.push(
        `column ${column.name} of table ${definition.table} is ${found.type}, not ${CATALOG_TYPES[column.type]}`,
      );
    } else if (found.generated !== "" || found.identity === "a") {
      problems.push(`column ${column.name} of table ${definition.table} takes no value`);
    }
  }
  for (const column of columns) {
    if (
      column.not_null &&
      !column.has_default &&
      column.identity === "" &&
      column.generated === "" &&
      !mapped.has(column.name)
    ) {
      problems.push(
        `column ${column.name} of table ${definition.table} is NOT NULL without a default: map it`,
      );
    }
  }
  if (definition.key.length > 0) {
    // ON CONFLICT finds the rows by a unique index on exactly the key's columns; insert
    // too, to tell the rows whose key is taken.
    const { rows } = await sql<{ found: boolean }>`
      select exists (
        select from pg_index i
        where i.indrelid = ${tableName(schema, definition.table)}::regclass
          and i.indisunique and i.indpred is null and i.indexprs is null
          and (select array_agg(a.attname::text order by a.attname)
               from pg_attribute a where a.attrelid = i.indrelid and a.attnum = any (i.indkey))
            = ${[...definition.key].sort()}::text[]) as found`.execute(tx);
    if (!rows[0]?.found) {
      problems.push(
        `table ${definition.table} has no unique index on exactly (${definition.key.join(", ")}), which ${definition.mode} needs`,
      );
    }
  }
  const notNull = definition.columns.filter((c) => byName.get(c.name)?.not_null).map((c) => c.name);
  return { problems, notNull };
}

/** Time zones PostgreSQL does not know, among the definition's. */
async function unknownZones(tx: Transaction<Database>, definition: TargetDefinition) {
  const zones = [...new Set(definition.columns.flatMap((c) => (c.timeZone ? [c.timeZone] : [])))];
  if (zones.length === 0) return [];
  const { rows } = await sql<{ name: string }>`
    select z as name from unnest(${zones}::text[]) as z
    where not exists (select from pg_timezone_names where name = z)
      and not exists (select from pg_timezone_abbrevs where abbrev = z)`.execute(tx);
  return rows.map((r) => r.name);
}

/**
 * Records the target, making the tenant's schema and the table when they do not exist. One
 * tenant's definitions take turns, so two of them cannot make one table at once.
 */
export async function saveTarget(
  db: Db,
  tenant: string,
  name: string,
  schema: string,
  definition: TargetDefinition,
): Promise<SaveOutcome> {
  const problems = definition.columns.flatMap((c) => {
    if (c.default === undefined) return [];
    const problem = valueCheck(c)(c.default);
    return problem ? [`the default of column ${c.name} ${problem}`] : [];
  });
  return db.transaction().execute(async (tx): Promise<SaveOutcome> => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`sluice.targets.${schema}`}, 0))`.execute(
      tx,
    );

    for (const zone of await unknownZones(tx, definition)) {
      problems.push(`PostgreSQL knows no time zone ${zone}`);
    }
    if (problems.length > 0) return { kind: "invalid", problems };
    await sql.raw(`create schema if not exists ${quoteIdent(schema)}`).execute(tx);
    const { rows } = await sql<{ exists: boolean }>`
      select to_regclass(${tableName(schema, definition.table)}) is not null as exists`.execute(tx);
    const tableCreated = !rows[0]?.exists;
    let notNull: string[] = [...definition.key];
    if (tableCreated) {
      await sql.raw(createTableSql(schema, definition)).execute(tx);
    } else {
      const checked = await checkTable(tx, schema, definition);
      if (checked.problems.length > 0) return { kind: "invalid", problems: checked.problems };
      notNull = checked.notNull;
    }
    const existing = await tx
      .selectFrom("targets")
      .select("version")
      .where("tenant", "=", tenant)
      .where("name", "=", name)
      .executeTakeFirst();
    const row = await tx
      .insertInto("targets")
      .values({
        tenant,
        name,
        schema_name: schema,
        definition: JSON.stringify(definition),
        not_null: JSON.stringify(notNull),
      })
      .onConflict((oc) =>
        oc.columns(["tenant", "name"]).doUpdateSet({
          schema_name: schema,
          definition: JSON.stringify(definition),
          not_null: JSON.stringify(notNull),
          version: sql`targets.version + 1`,
          updated_at: sql`now()`,
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return { kind: "saved", target: toRecord(row), created: !existing, tableCreated };
  });
}

export async function findTarget(
  db: Db,
  tenant: string,
  name: string,
): Promise<TargetRecord | undefined> {
  const row = await db
    .selectFrom("targets")
    .selectAll()
    .where("tenant", "=", tenant)
    .where("name", "=", name)
    .executeTakeFirst();
  return row && toRecord(row);
}

export async function listTargets(db: Db, tenant: string): Promise<TargetRecord[]> {
  const rows = await db
    .selectFrom("targets")
    .selectAll()
    .where("tenant", "=", tenant)
    .orderBy("name")
    .execute();
  return rows.map(toRecord);
}

/** Forgets the target; its table and rows stay the tenant's. */
export async function deleteTarget(db: Db, tenant: string, name: string): Promise<boolean> {
  const result = await db
    .deleteFrom("targets")
    .where("tenant", "=", tenant)
    .where("name", "=", name)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** The snapshot an upload keeps: the definition without its bookkeeping. */
export function snapshotOf(target: TargetRecord): TargetSnapshot {
  const { createdAt: _c, updatedAt: _u, tenant: _t, ...snapshot } = target;
  return snapshot;
}

/**
 * Saves each target of a targets file that differs from what is recorded; the problems of
 * those whose tables do not fit, by tenant and name.
 */
export async function applyTargets(
  db: Db,
  targets: readonly FileTarget[],
): Promise<{ saved: number; unchanged: number; problems: string[] }> {
  const outcome = { saved: 0, unchanged: 0, problems: [] as string[] };
  for (const { tenant, name, schema, definition } of targets) {
    // A program starting again with the same file leaves each target, and its version, as is.
    const same = await db
      .selectFrom("targets")
      .select("version")
      .where("tenant", "=", tenant)
      .where("name", "=", name)
      .where("schema_name", "=", schema)
      .where(sql<boolean>`definition = ${JSON.stringify(definition)}::jsonb`)
      .executeTakeFirst();
    if (same) {
      outcome.unchanged++;
      continue;
    }
    const saved = await saveTarget(db, tenant, name, schema, definition);
    if (saved.kind === "invalid") {
      outcome.problems.push(...saved.problems.map((p) => `${tenant}/${name}: ${p}`));
    } else {
      outcome.saved++;
    }
  }
  return outcome;
}
