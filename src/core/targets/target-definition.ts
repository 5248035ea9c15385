// A target: the tenant's own typed table that an upload's rows land in, the mapping from the
// file's header to its columns, each column's type, and what a load does with a key that
// exists. Parsed from a PUT body, every problem reported together; nothing here touches the
// database (targets.repository.ts checks the table itself).
import { createHash } from "node:crypto";

export const COLUMN_TYPES = [
  "text",
  "integer",
  "bigint",
  "numeric",
  "boolean",
  "date",
  "timestamptz",
  "uuid",
  "jsonb",
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export const LOAD_MODES = ["insert", "upsert", "skip"] as const;
export type LoadMode = (typeof LOAD_MODES)[number];

export type TargetColumn = Readonly<{
  name: string;
  type: ColumnType;
  /** The header name in the file; the column's name unless told otherwise. */
  header: string;
  /** The header must name it, and a row's value may not be empty unless there is a default. */
  required: boolean;
  /** Used for an empty value, and when the header does not name the column; as the file would write it. */
  default?: string;
  /** How the file writes a date or timestamptz (see compileFormat). */
  format?: string;
  /** The zone of a timestamptz whose format has no TZ. */
  timeZone?: string;
}>;

export type TargetDefinition = Readonly<{
  table: string;
  mode: LoadMode;
  /** The columns of the conflict clause (upsert, skip), and the primary key of a table Sluice creates. */
  key: readonly string[];
  columns: readonly TargetColumn[];
  /** Header names accepted and dropped. */
  ignore: readonly string[];
  /** Drop every header name the mapping does not know, instead of refusing the file. */
  ignoreOthers: boolean;
}>;

/** What an upload lands with: the definition as it was when the upload was accepted, and where. */
export type TargetSnapshot = TargetDefinition &
  Readonly<{
    name: string;
    schema: string;
    version: number;
    /** Columns the table holds NOT NULL: an empty value without a default is a row error. */
    notNull: readonly string[];
  }>;

/** Names of targets, tables and columns: lower case, so that they need no quoting to be typed. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const TARGET_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const DEFAULT_FORMATS: Partial<Record<ColumnType, string>> = {
  date: "YYYY-MM-DD",
  timestamptz: "YYYY-MM-DDTHH:MI:SSTZ",
};
/** PostgreSQL's limit of columns in a table. */
const MAX_COLUMNS = 1600;
/** PostgreSQL's limit of columns in an index. */
const MAX_KEY_COLUMNS = 32;
const MAX_HEADER_CHARS = 1024;
const MAX_DEFAULT_CHARS = 1024;
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}]/u;

export const isTargetName = (name: string) => TARGET_NAME.test(name);

/**
 * Each tenant's tables live in a schema of its own, which no definition can name otherwise:
 * `tenant_<name>` for a tenant whose name is an identifier, else a digest of it.
 */
export function tenantSchema(tenant: string): string {
  const plain = tenant.toLowerCase() === tenant && IDENTIFIER.test(`tenant_${tenant}`);
  if (plain) return `tenant_${tenant}`;
  return `tenant_${createHash("sha256").update(tenant).digest("hex").slice(0, 24)}`;
}

/** An identifier as SQL text; only names that passed IDENTIFIER reach here, quoted all the same. */
export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

// Date and time formats: tokens, and separators taken as they are.
export type FormatToken = "YYYY" | "MM" | "DD" | "HH" | "MI" | "SS" | "FF" | "TZ";
type Token = FormatToken;
const TOKENS: Readonly<Record<Token, string>> = {
  YYYY: "([0-9]{4})",
  MM: "([0-9]{2})",
  DD: "([0-9]{2})",
  HH: "([0-9]{2})",
  MI: "([0-9]{2})",
  SS: "([0-9]{2})",
  FF: "([0-9]{1,6})",
  TZ: "(Z|[+-][0-9]{2}(?::?[0-9]{2})?)",
};
const TOKEN_ORDER: Token[] = ["YYYY", "MM", "MI", "DD", "HH", "SS", "FF", "TZ"];
const SEPARATORS = new Set(["-", "/", ".", ":", " ", "T", ","]);

/**
 * A format compiled once: the pattern a value must match (the same text serves JavaScript's
 * RegExp and PostgreSQL's regexp_replace), where each field is among its groups, and the
 * replacement that rewrites a matching value as ISO 8601, which PostgreSQL reads one way only.
 */
export type CompiledFormat = Readonly<{
  pattern: string;
  groups: Readonly<Partial<Record<Token, number>>>;
  iso: string;
}>;

export function compileFormat(
  format: string,
  type: "date" | "timestamptz",
): CompiledFormat | string {
  const groups: Partial<Record<Token, number>> = {};
  let pattern = "^";
  let group = 0;
  for (let at = 0; at < format.length; ) {
    const token = TOKEN_ORDER.find((t) => format.startsWith(t, at));
    if (token) {
      if (groups[token] !== undefined) return `format names ${token} twice`;
      groups[token] = ++group;
      pattern += TOKENS[token];
      at += token.length;
      continue;
    }
    const char = format[at] as string;
    if (!SEPARATORS.has(char)) {
      return `format holds "${char}"; it is made of YYYY, MM, DD, HH, MI, SS, FF, TZ and the separators - / . : , T and space`;
    }
    pattern += char === "." ? "\\." : char;
    at++;
  }
  pattern += "$";
  const needed: Token[] = type === "date" ? ["YYYY", "MM", "DD"] : ["YYYY", "MM", "DD", "HH", "MI"];
  const missing = needed.filter((t) => groups[t] === undefined);
  if (missing.length > 0) return `format lacks ${missing.join(", ")}`;
  if (type === "date" && TOKEN_ORDER.slice(4).some((t) => groups[t] !== undefined)) {
    return "a date's format has only YYYY, MM and DD";
  }
  const g = (t: Token) => `\\${groups[t]}`;
  let iso = `${g("YYYY")}-${g("MM")}-${g("DD")}`;
  if (type === "timestamptz") {
    iso += ` ${g("HH")}:${g("MI")}:${groups.SS ? g("SS") : "00"}`;
    if (groups.FF) iso += `.${g("FF")}`;
    if (groups.TZ) iso += g("TZ");
  }
  return { pattern, groups, iso };
}

export type Problems = string[];

function text(value: unknown, where: string, problems: Problems): string | undefined {
  if (typeof value !== "string") {
    problems.push(`${where} must be a string`);
    return undefined;
  }
  return value;
}

function identifier(value: unknown, where: string, problems: Problems): string | undefined {
  const name = text(value, where, problems);
  if (name !== undefined && !IDENTIFIER.test(name)) {
    problems.push(
      `${where} must be 1 to 63 lower-case letters, digits and _, not starting with a digit`,
    );
    return undefined;
  }
  return name;
}

function knownKeys(
  value: Record<string, unknown>,
  known: string[],
  where: string,
  problems: Problems,
) {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) problems.push(`${where} has an unknown field "${key.slice(0, 40)}"`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function headerName(value: unknown, where: string, problems: Problems): string | undefined {
  const name = text(value, where, problems);
  if (name === undefined) return undefined;
  if (
    name.trim() === "" ||
    name.length > MAX_HEADER_CHARS ||
    CONTROL.test(name) ||
    !name.isWellFormed()
  ) {
    problems.push(
      `${where} must be a header name: not blank, at most ${MAX_HEADER_CHARS} characters, no control character`,
    );
    return undefined;
  }
  return name;
}

function parseColumn(raw: unknown, index: number, problems: Problems): TargetColumn | undefined {
  const where = `columns[${index}]`;
  if (!isObject(raw)) {
    problems.push(`${where} must be an object`);
    return undefined;
  }
  knownKeys(
    raw,
    ["name", "type", "header", "required", "default", "format", "timeZone"],
    where,
    problems,
  );
  const before = problems.length;
  const name = identifier(raw.name, `${where}.name`, problems);
  const type = raw.type as ColumnType;
  if (!COLUMN_TYPES.includes(type)) {
    problems.push(`${where}.type must be one of ${COLUMN_TYPES.join(", ")}`);
  }
  const header =
    raw.header === undefined ? name : headerName(raw.header, `${where}.header`, problems);
  if (raw.required !== undefined && typeof raw.required !== "boolean") {
    problems.push(`${where}.required must be true or false`);
  }
  let format: string | undefined;
  if (raw.format !== undefined) {
    if (type !== "date" && type !== "timestamptz") {
      problems.push(`${where}.format is for date and timestamptz columns only`);
    } else {
      format = text(raw.format, `${where}.format`, problems);
    }
  } else if (type === "date" || type === "timestamptz") {
    format = DEFAULT_FORMATS[type];
  }
  if (format !== undefined && (type === "date" || type === "timestamptz")) {
    const compiled = compileFormat(format, type);
    if (typeof compiled === "string") problems.push(`${where}.format: ${compiled}`);
  }
  let timeZone: string | undefined;
  if (raw.timeZone !== undefined) {
    timeZone = text(raw.timeZone, `${where}.timeZone`, problems);
    if (type !== "timestamptz") {
      problems.push(`${where}.timeZone is for timestamptz columns only`);
    } else if (format?.includes("TZ")) {
      problems.push(`${where}.timeZone cannot go with a format that has TZ`);
    } else if (timeZone !== undefined && !/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(timeZone)) {
      problems.push(`${where}.timeZone must be a time zone name such as Europe/Paris or UTC`);
    }
  }
  let fallback: string | undefined;
  if (raw.default !== undefined) {
    fallback = text(raw.default, `${where}.default`, problems);
    if (
      fallback !== undefined &&
      (fallback === "" ||
        fallback.length > MAX_DEFAULT_CHARS ||
        fallback.includes("\u0000") ||
        !fallback.isWellFormed())
    ) {
      problems.push(`${where}.default must be 1 to ${MAX_DEFAULT_CHARS} characters, without NUL`);
      fallback = undefined;
    }
  }
  if (problems.length > before || name === undefined || header === undefined) return undefined;
  const column: TargetColumn = {
    name,
    type,
    header,
    required: raw.required === true,
    ...(fallback === undefined ? {} : { default: fallback }),
    ...(format === undefined ? {} : { format }),
    ...(type === "timestamptz" && !format?.includes("TZ") ? { timeZone: timeZone ?? "UTC" } : {}),
  };
  return column;
}

/** The definition in a PUT body, or every problem with it. */
export function parseTargetDefinition(
  raw: unknown,
  schema: string,
): { definition: TargetDefinition } | { problems: Problems } {
  const problems: Problems = [];
  if (!isObject(raw)) return { problems: ["the body must be a JSON object"] };
  knownKeys(
    raw,
    ["table", "schema", "mode", "key", "columns", "ignore", "ignoreOthers"],
    "the target",
    problems,
  );
  const table = identifier(raw.table, "table", problems);
  if (raw.schema !== undefined && raw.schema !== schema) {
    problems.push(`schema must be ${schema}: each tenant's tables live in its own schema`);
  }
  const mode = (raw.mode ?? "insert") as LoadMode;
  if (!LOAD_MODES.includes(mode)) problems.push(`mode must be one of ${LOAD_MODES.join(", ")}`);

  const columns: TargetColumn[] = [];
  if (!Array.isArray(raw.columns) || raw.columns.length === 0) {
    problems.push("columns must be a non-empty array");
  } else if (raw.columns.length > MAX_COLUMNS) {
    problems.push(`columns may hold at most ${MAX_COLUMNS} columns`);
  } else {
    raw.columns.forEach((c, i) => {
      const column = parseColumn(c, i, problems);
      if (column) columns.push(column);
    });
  }
  const names = new Set<string>();
  const headers = new Set<string>();
  for (const column of columns) {
    if (names.has(column.name)) problems.push(`column ${column.name} is defined twice`);
    if (headers.has(column.header)) {
      problems.push(`header "${column.header.slice(0, 40)}" is mapped to two columns`);
    }
    names.add(column.name);
    headers.add(column.header);
  }

  const key: string[] = [];
  if (raw.key !== undefined) {
    if (!Array.isArray(raw.key)) {
      problems.push("key must be an array of column names");
    } else {
      raw.key.forEach((k, i) => {
        const name = identifier(k, `key[${i}]`, problems);
        if (name === undefined) return;
        if (key.includes(name)) problems.push(`key names ${name} twice`);
        else if (!names.has(name)) problems.push(`key column ${name} is not among the columns`);
        else key.push(name);
      });
    }
  }
  if (key.length > MAX_KEY_COLUMNS) {
    problems.push(`key may hold at most ${MAX_KEY_COLUMNS} columns, as an index does`);
  }
  if ((mode === "upsert" || mode === "skip") && key.length === 0) {
    problems.push(`mode ${mode} needs a key: the columns whose values say a row exists`);
  }

  const ignore: string[] = [];
  if (raw.ignore !== undefined) {
    if (!Array.isArray(raw.ignore)) {
      problems.push("ignore must be an array of header names");
    } else {
      raw.ignore.forEach((h, i) => {
        const name = headerName(h, `ignore[${i}]`, problems);
        if (name === undefined) return;
        if (headers.has(name)) {
          problems.push(`ignore[${i}] "${name.slice(0, 40)}" is mapped to a column`);
        } else if (!ignore.includes(name)) ignore.push(name);
      });
    }
  }
  if (raw.ignoreOthers !== undefined && typeof raw.ignoreOthers !== "boolean") {
    problems.push("ignoreOthers must be true or false");
  }
  if (problems.length > 0 || table === undefined) return { problems };
  // A key column's value says which row it is: it may never be missing.
  const keyed = columns.map((c) => (key.includes(c.name) ? { ...c, required: true } : c));
  return {
    definition: {
      table,
      mode,
      key,
      columns: keyed,
      ignore,
      ignoreOthers: raw.ignoreOthers === true,
    },
  };
}
