// The SQL of a target: the table Sluice creates for it, and the statements that move a
// batch's rows from a staging table into it. Identifiers come from a parsed definition
// (target-definition.ts) and are quoted all the same; values are literals escaped here.

import { STAGED_LINE as LINE, STAGED_ROW as N } from "./target-copy.ts";
import {
  type ColumnType,
  quoteIdent,
  type TargetDefinition,
  type TargetSnapshot,
} from "./target-definition.ts";
import { columnLabel } from "./target-values.ts";

/** What format_type() calls each type, to compare with a table that exists. */
export const CATALOG_TYPES: Readonly<Record<ColumnType, string>> = {
  text: "text",
  integer: "integer",
  bigint: "bigint",
  numeric: "numeric",
  boolean: "boolean",
  date: "date",
  timestamptz: "timestamp with time zone",
  uuid: "uuid",
  jsonb: "jsonb",
};

/** A string as an SQL literal; standard_conforming_strings is on in every PostgreSQL Sluice runs on. */
export const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

export const tableName = (schema: string, table: string) =>
  `${quoteIdent(schema)}.${quoteIdent(table)}`;

export function createTableSql(schema: string, definition: TargetDefinition): string {
  const columns = definition.columns.map(
    (c) => `${quoteIdent(c.name)} ${c.type}${definition.key.includes(c.name) ? " not null" : ""}`,
  );
  if (definition.key.length > 0) {
    columns.push(`primary key (${definition.key.map(quoteIdent).join(", ")})`);
  }
  return `create table ${tableName(schema, definition.table)} (${columns.join(", ")})`;
}

/** Restricts a statement to the staging rows numbered from $1 to $2 (`ranged`), or takes them all. */
const rowsOf = (ranged: boolean) => (ranged ? ` where ${N} between $1 and $2` : "");

/**
 * The statement that moves a batch's rows from the staging table, where COPY converted them
 * (target-copy.ts), into the target by the mode's conflict clause. Upsert keeps
 * the last row of a key within the batch, since one statement may not update a row twice,
 * and takes keys in order, so that two batches upserting the same keys at once lock them in
 * one order; skip keeps the first. `ranged`: only the rows numbered $1 to $2.
 */
export function fromStagingSql(
  target: TargetSnapshot,
  columns: readonly string[],
  stage: string,
  ranged = false,
): string {
  const names = columns.map(quoteIdent).join(", ");
  const key = target.key.map(quoteIdent).join(", ");
  const into = `insert into ${tableName(target.schema, target.table)} (${names})`;
  const updated = columns
    .filter((name) => !target.key.includes(name))
    .map((name) => `${quoteIdent(name)} = excluded.${quoteIdent(name)}`);
  switch (target.mode) {
    case "skip":
      return `${into} select ${names} from ${stage}${rowsOf(ranged)} order by ${N} on conflict (${key}) do nothing`;
    case "upsert":
      return `${into} select ${names} from (
          select distinct on (${key}) * from ${stage}${rowsOf(ranged)} order by ${key}, ${N} desc) as d
        order by ${key}
        on conflict (${key}) ${updated.length > 0 ? `do update set ${updated.join(", ")}` : "do nothing"}`;
    case "insert":
      // With a key, duplicateKeysSql; without one, the row-by-row landing's plain insert.
      return `${into} select ${names} from ${stage}${rowsOf(ranged)} order by ${N}`;
  }
}

/**
 * Insert from the staging table, once a row's key was found taken: the first row of each key
 * that is not in the table lands, and every other row is a row error, DuplicateKey, naming
 * the key's columns and values. Answers the number of those rows, as `duplicates`.
 * `ranged`: only the rows numbered $1 to $2.
 */
export function duplicateKeysSql(
  target: TargetSnapshot,
  columns: readonly string[],
  stage: string,
  uploadId: string,
  ranged = false,
): string {
  const names = columns.map(quoteIdent).join(", ");
  const key = target.key.map(quoteIdent).join(", ");
  const shown = target.key
    .map((k) => `to_json(left(s.${quoteIdent(k)}::text, 40))::text`)
    .join(` || ', ' || `);
  const message = `${literal(`key (${target.key.join(", ")}) = (`)} || ${shown} || ${literal(") exists already, in the table or on another row of the file")}`;
  return `with firsts as (select distinct on (${key}) * from ${stage}${rowsOf(ranged)} order by ${key}, ${N}),
    landed as (
      insert into ${tableName(target.schema, target.table)} (${names})
      select ${names} from firsts order by ${N}
      on conflict (${key}) do nothing returning ${key}),
    refused as (
      insert into row_errors (upload_id, row_number, line, code, message)
      select ${literal(uploadId)}::uuid, s.${N}, s.${LINE}, 'DuplicateKey', ${message}
      from ${stage} as s
      where ${ranged ? `s.${N} between $1 and $2 and ` : ""}not exists (
        select from firsts as f join landed using (${key}) where f.${N} = s.${N})
      returning 1)
    select count(*)::int as duplicates from refused`;
}

/** A row error's reason for a refusal, from PostgreSQL's, on one line and bounded. */
const MAX_DETAIL_CHARS = 300;

/**
 * Lands a batch's staged rows once a constraint of the table other than the key (a unique
 * index, NOT NULL, CHECK, a foreign key, an exclusion) refused one of them: the rows go in by
 * the mode's statement a range at a time, and a range refused is split in two until the row
 * refused is alone; that row becomes a row error, ConstraintViolation, naming the columns of
 * the constraint (by their headers, as the api's row errors do) and PostgreSQL's reason. Ranges
 * go in the file's order, so the first row of a key or of a unique value lands. Each range
 * is a subtransaction; a batch with k refused rows of n takes about 2k·log2(n) of them.
 * The statement after it answers the rows refused, duplicate keys included, as `refused`.
 * Deferred constraints are to be made immediate before, so that the refusal is the row's.
 */
export function rowByRowSql(
  target: TargetSnapshot,
  columns: readonly string[],
  stage: string,
  uploadId: string,
): string {
  const table = literal(tableName(target.schema, target.table));
  const counted = target.mode === "insert" && target.key.length > 0;
  const range = counted
    ? duplicateKeysSql(target, columns, stage, uploadId, true)
    : fromStagingSql(target, columns, stage, true);
  const renamed = target.columns.filter((c) => c.header !== c.name);
  const label =
    renamed.length === 0
      ? `'column ' || a.attname`
      : `case a.attname ${renamed.map((c) => `when ${literal(c.name)} then ${literal(columnLabel(c))}`).join(" ")} else 'column ' || a.attname end`;
  const oneLine = (text: string) => `regexp_replace(${text}, '[[:cntrl:]]', ' ', 'g')`;
  const body = `
declare
  ns bigint[] := array(select ${N} from ${stage} order by ${N});
  los int[] := case when cardinality(ns) > 0 then array[1] else '{}' end;
  his int[] := case when cardinality(ns) > 0 then array[cardinality(ns)] else '{}' end;
  lo int;
  hi int;
  mid int;
  taken int;
  refused int := 0;
  v_message text;
  v_detail text;
  v_column text;
  v_constraint text;
  v_labels text;
begin
  while cardinality(los) > 0 loop
    lo := los[cardinality(los)];
    hi := his[cardinality(his)];
    los := trim_array(los, 1);
    his := trim_array(his, 1);
    begin
      ${counted ? `execute ${literal(range)} using ns[lo], ns[hi] into taken;\n      refused := refused + taken;` : `execute ${literal(range)} using ns[lo], ns[hi];`}
    exception when integrity_constraint_violation then
      if lo < hi then
        -- The first half is taken next: rows land in the file's order.
        mid := (lo + hi) / 2;
        los := los || array[mid + 1, lo];
        his := his || array[hi, mid];
      else
        get stacked diagnostics v_message = message_text, v_detail = pg_exception_detail,
          v_column = column_name, v_constraint = constraint_name;
        select string_agg(${label}, ', ' order by a.attnum) into v_labels
        from pg_attribute as a
        where a.attrelid = ${table}::regclass and a.attnum > 0 and (a.attname = v_column
          or a.attnum = any (select unnest(c.conkey) from pg_constraint as c
            where c.conrelid = ${table}::regclass and c.conname = v_constraint));
        insert into row_errors (upload_id, row_number, line, code, message)
        select ${literal(uploadId)}::uuid, s.${N}, s.${LINE}, 'ConstraintViolation',
          coalesce(v_labels || ': ', '') || ${oneLine("v_message")}
          || case when coalesce(v_detail, '') = '' then '' else '. ' || ${oneLine(
            `case when length(v_detail) > ${MAX_DETAIL_CHARS} then left(v_detail, ${MAX_DETAIL_CHARS}) || '…' else v_detail end`,
          )} end
        from ${stage} as s where s.${N} = ns[lo];
        refused := refused + 1;
      end if;
    end;
  end loop;
  perform set_config('sluice.refused', refused::text, true);
end`;
  return `do ${literal(body)}; select current_setting('sluice.refused')::int as refused`;
}
