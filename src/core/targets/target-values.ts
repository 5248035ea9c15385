// Whether a file's value converts to its column's type. The api decides this for every row
// of an upload into a target, where the row's line is known, and takes a row with a bad value
// out as a row error; the worker's casts (target-sql.ts) then meet only values that convert.
// Each check accepts a subset of what PostgreSQL's own input reads, and reads it the same way:
// no locale, no guessing (1,5 is not a number; 01/02/2026 is a date only in a format that
// says which field is the day).
import {
  type ColumnType,
  type CompiledFormat,
  compileFormat,
  type TargetColumn,
  type TargetSnapshot,
  type FormatToken as Token,
} from "./target-definition.ts";

/** Why the value does not convert, or undefined when it does. */
export type ValueCheck = (value: string) => string | undefined;

const INTEGER = /^[+-]?[0-9]+$/;
const NUMERIC = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BOOLEANS = new Set(["true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"]);
const INT4 = [-(2n ** 31n), 2n ** 31n - 1n] as const;
const INT8 = [-(2n ** 63n), 2n ** 63n - 1n] as const;
/** PostgreSQL's numeric holds at most this many digits before and after the point. */
const NUMERIC_DIGITS = [131072, 16383] as const;
/** Nesting PostgreSQL's jsonb reads well within its stack. */
const JSON_DEPTH = 100;

function inRange(value: string, [low, high]: readonly [bigint, bigint]): boolean {
  // Short values are certainly within int4; only long ones pay for a BigInt.
  if (value.length < 10) return true;
  const n = BigInt(value);
  return n >= low && n <= high;
}

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Each token's place in a value of `format`, for those before any of varying width. */
function fixedPlaces(format: string): Partial<Record<Token, number>> {
  const places: Partial<Record<Token, number>> = {};
  for (let at = 0; at < format.length; ) {
    const token = (["YYYY", "MM", "MI", "DD", "HH", "SS"] as const).find((t) =>
      format.startsWith(t, at),
    );
    if (token) places[token] = at;
    // FF and TZ vary in width: what follows them has no fixed place.
    if (format.startsWith("FF", at) || format.startsWith("TZ", at)) break;
    at += token ? token.length : 1;
  }
  return places;
}

/** The number written by the digits of `value` from `at` for `length` characters. */
function digitsAt(value: string, at: number, length: number): number {
  let n = 0;
  for (let i = at; i < at + length; i++) n = n * 10 + value.charCodeAt(i) - 48;
  return n;
}

function dateCheck(format: string, type: "date" | "timestamptz"): ValueCheck {
  const compiled = compileFormat(format, type) as CompiledFormat;
  const pattern = new RegExp(compiled.pattern);
  const { groups } = compiled;
  const places = fixedPlaces(format);
  // The same pattern without its groups, for values whose fields have fixed places.
  const shape = new RegExp(compiled.pattern.replaceAll("(", "(?:").replaceAll("(?:?:", "(?:"));
  // Fields at fixed places are read from the value itself, which the pattern matched: no
  // array of groups to make for each value.
  const fixed = (["YYYY", "MM", "DD", "HH", "MI", "SS"] as const).every(
    (t) => groups[t] === undefined || places[t] !== undefined,
  );
  // Each field's place, -1 for one the format lacks.
  const [year, month, day, hour, minute, second] = (
    ["YYYY", "MM", "DD", "HH", "MI", "SS"] as const
  ).map((t) => places[t] ?? -1) as [number, number, number, number, number, number];
  const read = (value: string, at: number, width: number) =>
    at < 0 ? 0 : digitsAt(value, at, width);
  // A zone that ends the format ends the value: Z, or from its last sign on.
  const zoneLast = groups.TZ === undefined || format.endsWith("TZ");
  return (value) => {
    if (fixed && zoneLast) {
      if (!shape.test(value)) return `does not match the format ${format}`;
      const problem = fieldsProblem(
        read(value, year, 4),
        read(value, month, 2),
        read(value, day, 2),
        read(value, hour, 2),
        read(value, minute, 2),
        read(value, second, 2),
      );
      if (problem || groups.TZ === undefined || value.endsWith("Z")) return problem;
      const sign = Math.max(value.lastIndexOf("+"), value.lastIndexOf("-"));
      const hours = digitsAt(value, sign + 1, 2);
      const minutes = value.length - sign > 3 ? digitsAt(value, value.length - 2, 2) : 0;
      return hours > 14 || minutes > 59 ? `has the offset ${value.slice(sign)}` : undefined;
    }
    const match = pattern.exec(value);
    if (!match) return `does not match the format ${format}`;
    const field = (t: Token) => (groups[t] === undefined ? 0 : Number(match[groups[t] as number]));
    const problem = fieldsProblem(
      field("YYYY"),
      field("MM"),
      field("DD"),
      field("HH"),
      field("MI"),
      field("SS"),
    );
    if (problem || groups.TZ === undefined) return problem;
    const zone = match[groups.TZ] as string;
    const hours = zone === "Z" ? 0 : Number(zone.slice(1, 3));
    const minutes = zone.length > 3 ? Number(zone.slice(-2)) : 0;
    return hours > 14 || minutes > 59 ? `has the offset ${zone}` : undefined;
  };
}

/** What is wrong with a date's or a time's fields, if anything; 0 for a field not written. */
function fieldsProblem(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): string | undefined {
  if (year < 1) return "has year 0000";
  if (month < 1 || month > 12) return `has month ${month}`;
  const days = month === 2 && isLeap(year) ? 29 : (DAYS[month - 1] as number);
  if (day < 1 || day > days) return `has day ${day}, and the month has ${days}`;
  if (hour > 23) return `has hour ${hour}`;
  if (minute > 59) return `has minute ${minute}`;
  if (second > 59) return `has second ${second}`;
  return undefined;
}

/** No NUL, no lone surrogate (PostgreSQL's jsonb refuses both), and not too deep. */
function jsonFits(value: unknown, depth: number): boolean {
  if (depth > JSON_DEPTH) return false;
  if (typeof value === "string") return value.isWellFormed() && !value.includes("\u0000");
  if (typeof value !== "object" || value === null) return true;
  for (const [key, item] of Object.entries(value)) {
    if (!jsonFits(key, depth) || !jsonFits(item, depth + 1)) return false;
  }
  return true;
}

export function valueCheck(column: Pick<TargetColumn, "type" | "format">): ValueCheck {
  const type: ColumnType = column.type;
  switch (type) {
    case "text":
      return () => undefined;
    case "integer":
    case "bigint": {
      const range = type === "integer" ? INT4 : INT8;
      return (value) => {
        if (!INTEGER.test(value)) return `is not ${type === "integer" ? "an integer" : "a bigint"}`;
        return inRange(value, range) ? undefined : `is out of the range of ${type}`;
      };
    }
    case "numeric":
      return (value) => {
        if (!NUMERIC.test(value)) {
          return 'is not a numeric (digits, with "." before any decimals; no thousands separator)';
        }
        // Shorter values hold fewer digits than either limit: no need to count them.
        if (value.length <= NUMERIC_DIGITS[1]) return undefined;
        const [whole = "", decimals = ""] = value.replace(/^[+-]/, "").split(".");
        return whole.length > NUMERIC_DIGITS[0] || decimals.length > NUMERIC_DIGITS[1]
          ? "has more digits than numeric holds"
          : undefined;
      };
    case "boolean":
      return (value) =>
        BOOLEANS.has(value.toLowerCase())
          ? undefined
          : "is not a boolean (true, false, t, f, yes, no, y, n, 1 or 0)";
    case "date":
    case "timestamptz":
      return dateCheck(column.format as string, type);
    case "uuid":
      return (value) => (UUID.test(value) ? undefined : "is not a UUID");
    case "jsonb":
      return (value) => {
        // A number PostgreSQL's numeric cannot hold would fail the whole batch there.
        if (/[eE][+-]?[0-9]{5,}|[0-9]{1000,}/.test(value))
          return "holds a number jsonb cannot hold";
        try {
          return jsonFits(JSON.parse(value), 0) ? undefined : "holds a NUL or a broken character";
        } catch {
          return "is not JSON";
        }
      };
  }
}

/** A value as a row error quotes it: bounded, on one line. */
export function shownValue(value: string): string {
  const short = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(short);
}

/** How a row error names a column: by its name, and by the file's when that differs. */
export function columnLabel(column: TargetColumn): string {
  return column.header === column.name
    ? `column ${column.name}`
    : `column ${column.name} (header ${shownValue(column.header)})`;
}

export type RowProblem = Readonly<{ code: "InvalidValue" | "MissingValue"; message: string }>;

/** What the file's header means for a target: the columns it lacks or does not map, and the row check. */
export type HeaderPlan = Readonly<{
  missing: string[];
  unmapped: string[];
  /** The first problem of a row, or undefined when every value converts. */
  check(values: readonly string[]): RowProblem | undefined;
}>;

export function planHeader(target: TargetSnapshot, header: readonly string[]): HeaderPlan {
  const index = new Map(header.map((name, i) => [name, i]));
  const missing = target.columns.filter((c) => c.required && !index.has(c.header));
  const mapped = new Set([...target.columns.map((c) => c.header), ...target.ignore]);
  const unmapped = target.ignoreOthers ? [] : header.filter((name) => !mapped.has(name));
  const notNull = new Set(target.notNull);
  const checks = target.columns.flatMap((column) => {
    const at = index.get(column.header);
    if (at === undefined) return [];
    const label = columnLabel(column);
    return [
      {
        at,
        label,
        type: column.type,
        check: valueCheck(column),
        // An empty value is the default, or NULL where the table takes one.
        empty:
          column.default !== undefined
            ? undefined
            : column.required || notNull.has(column.name)
              ? `${label} is empty and has no default`
              : undefined,
      },
    ];
  });
  return {
    missing: missing.map((c) => c.header),
    unmapped,
    check(values) {
      for (const c of checks) {
        const value = values[c.at] as string;
        if (value === "") {
          if (c.empty) return { code: "MissingValue", message: c.empty };
          continue;
        }
        const problem = c.check(value);
        if (problem) {
          return { code: "InvalidValue", message: `${c.label}: ${shownValue(value)} ${problem}` };
        }
      }
      return undefined;
    },
  };
}
