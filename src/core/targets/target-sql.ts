// The SQL of a target: the table Sluice creates for it, and the one statement that lands a
// batch's rows in it. Identifiers come from a parsed definition (target-definition.ts) and are
// quoted all the same; values travel as parameters or as literals escaped here.
import {
  type ColumnType,
  type CompiledFormat,
  compileFormat,
  quoteIdent,
  type TargetColumn,
  type TargetDefinition,
  type TargetSnapshot,
} from "./target-definition.ts";

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

/**
 * Formats whose values PostgreSQL reads as they are, ISO 8601's order of fields: a value
 * that matched one needs no rewriting, which saves a regular expression per value.
 */
const READ_AS_IS = {
  date: /^YYYY-MM-DD$/,
  timestamptz: /^YYYY-MM-DD[T ]HH:MI(?::SS(?:\.FF)?)?(?:TZ)?$/,
};

/** `text` (a value that passed target-values.ts, or NULL) as the column's type. */
export function castSql(column: TargetColumn, text: string): string {
  if (
    (column.type === "date" || column.type === "timestamptz") &&
    READ_AS_IS[column.type].test(column.format as string)
  ) {
    return column.timeZone === undefined
      ? `${text}::${column.type}`
      : `(${text} || ${literal(` ${column.timeZone}`)})::timestamptz`;
  }
  if (column.type === "date" || column.type === "timestamptz") {
    const { pattern, iso } = compileFormat(column.format as string, column.type) as CompiledFormat;
    const rewritten = `regexp_replace(${text}, ${literal(pattern)}, ${literal(iso)})`;
    if (column.type === "date") return `${rewritten}::date`;
    return column.timeZone === undefined
      ? `${rewritten}::timestamptz`
      : `(${rewritten} || ${literal(` ${column.timeZone}`)})::timestamptz`;
  }
  return column.type === "text" ? text : `${text}::${column.type}`;
}

/**
 * One statement that inserts the rows of a batch, given as its JSON in parameter $1, into the
 * target: each value taken from the row's array by the file's column order, empty as the
 * default or NULL, cast, then the conflict clause of the mode. Upsert keeps the last row of a
 * key within the batch, since one statement may not update a row twice. Columns the header
 * does not name and that have no default are left to the table.
 */
export function landingSql(target: TargetSnapshot, header: readonly string[]): string {
  const index = new Map(header.map((name, i) => [name, i]));
  const landed = target.columns.flatMap((column) => {
    const at = index.get(column.header);
    const fallback = column.default === undefined ? "null" : literal(column.default);
    if (at === undefined) {
      return column.default === undefined ? [] : [{ column, value: castSql(column, fallback) }];
    }
    const raw = `nullif(r -> 'values' ->> ${at}, '')`;
    const text = column.default === undefined ? raw : `coalesce(${raw}, ${fallback})`;
    return [{ column, value: castSql(column, text) }];
  });
  const names = landed.map(({ column }) => quoteIdent(column.name));
  const values = landed.map(({ value }, i) => `${value} as c${i}`);
  const aliases = landed.map((_, i) => `c${i}`);
  const keyAliases = target.key.map(
    (k) => `c${landed.findIndex(({ column }) => column.name === k)}`,
  );
  const rows = `select ${values.join(", ")}, (r ->> 'row')::bigint as n
    from jsonb_array_elements($1::jsonb -> 'rows') as r`;
  const into = `insert into ${tableName(target.schema, target.table)} (${names.join(", ")})`;
  const updated = landed
    .filter(({ column }) => !target.key.includes(column.name))
    .map(({ column }) => `${quoteIdent(column.name)} = excluded.${quoteIdent(column.name)}`);
  const conflict = `on conflict (${target.key.map(quoteIdent).join(", ")})`;
  switch (target.mode) {
    case "insert":
      return `${into} select ${aliases.join(", ")} from (${rows}) as s order by n`;
    case "skip":
      return `${into} select ${aliases.join(", ")} from (${rows}) as s order by n ${conflict} do nothing`;
    case "upsert":
      // Rows in key order: two batches upserting the same keys at once lock them in one order.
      return `${into} select ${aliases.join(", ")} from (
          select distinct on (${keyAliases.join(", ")}) * from (${rows}) as s
          order by ${keyAliases.join(", ")}, n desc) as d
        order by ${keyAliases.join(", ")}
        ${updated.length > 0 ? `${conflict} do update set ${updated.join(", ")}` : `${conflict} do nothing`}`;
  }
}
