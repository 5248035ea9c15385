// A batch's rows as PostgreSQL's COPY text for a target's table: each target column's value
// taken from the row's array by its place in the file's header, the empty ones as the
// column's default or NULL, dates in other formats rewritten as ISO 8601 and zone names
// added, so that COPY's own input functions convert them as casts from text would. The api
// kept out every row whose values do not convert (target-values.ts). Built byte by byte from
// the batch as it is (batch-layout.ts): a value is a JSON string, whose escapes of a
// backslash, a line break or a tab are COPY's too, so most values are copied whole.
import { createHash } from "node:crypto";
import {
  BACKSLASH,
  COMMA,
  checkRowClosed,
  copyRun,
  malformed,
  NEWLINE,
  QUOTE,
  ROW_NUMBER_AT,
  ROWS_OPEN,
  rowCount,
  rowNumberEnd,
  rowsOpen,
  TAB,
  VALUES_AFTER,
} from "../uploads/batch-layout.ts";
import {
  type CompiledFormat,
  compileFormat,
  quoteIdent,
  type TargetColumn,
  type TargetSnapshot,
} from "./target-definition.ts";

const SLASH = 0x2f;
const LETTER_U = 0x75;
const NULL_TEXT = Buffer.from("\\N");

/** What the batch says before its rows: the file's header, and each row's line as steps. */
export type BatchHead = Readonly<{
  columns: readonly string[];
  /** [row, line] pairs: from that row on, line = row + (line - row), until the next pair. */
  lines: readonly (readonly [number, number])[];
}>;

export function batchHead(batch: Buffer): BatchHead {
  const open = rowsOpen(batch);
  const head = JSON.parse(`${batch.toString("utf8", 0, open)}"rows":[]}`) as {
    columns?: unknown;
    lines?: unknown;
  };
  if (!Array.isArray(head.columns) || !head.columns.every((c) => typeof c === "string")) {
    throw new Error("batch has no list of columns");
  }
  const lines = Array.isArray(head.lines)
    ? head.lines.filter(
        (step): step is [number, number] =>
          Array.isArray(step) && Number.isSafeInteger(step[0]) && Number.isSafeInteger(step[1]),
      )
    : [];
  return { columns: head.columns, lines };
}

/** A string as COPY text: backslash, line breaks and tab escaped. */
function copyEscaped(value: string): string {
  return value.replace(/[\\\n\r\t]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t",
  );
}

type Rewrite = Readonly<{ pattern: RegExp; replacement: string }>;

/** How one target column's value is written: from the row's array, or the same every row. */
type Slot = Readonly<{
  /** Its place in the row's array; -1 when the header does not name it. */
  at: number;
  /** Written for an empty value, and every row when `at` is -1. */
  empty: Buffer;
  /** Dates in a format other than ISO 8601's order are rewritten as ISO 8601. */
  rewrite?: Rewrite;
  /** ` Europe/Paris` after a timestamptz read in a zone of its own. */
  suffix?: Buffer;
}>;

/** Formats whose values PostgreSQL reads as they are, ISO 8601's order of fields. */
const READ_AS_IS = {
  date: /^YYYY-MM-DD$/,
  timestamptz: /^YYYY-MM-DD[T ]HH:MI(?::SS(?:\.FF)?)?(?:TZ)?$/,
};

function rewriteOf(column: TargetColumn): Rewrite | undefined {
  if (column.type !== "date" && column.type !== "timestamptz") return undefined;
  const format = column.format as string;
  if (READ_AS_IS[column.type].test(format)) return undefined;
  const { pattern, iso } = compileFormat(format, column.type) as CompiledFormat;
  // The replacement is written for PostgreSQL (\1); JavaScript's is $1.
  return { pattern: new RegExp(pattern), replacement: iso.replace(/\\(\d+)/g, "$$$1") };
}

/** A value as the file would write it (a default), as the COPY text of its column. */
function valueText(column: TargetColumn, rewrite: Rewrite | undefined, value: string): string {
  const rewritten = rewrite ? value.replace(rewrite.pattern, rewrite.replacement) : value;
  const zoned = column.timeZone === undefined ? rewritten : `${rewritten} ${column.timeZone}`;
  return copyEscaped(zoned);
}

export type TargetCopy = Readonly<{
  /** The target's columns the COPY text holds, in order, each with its type. */
  columns: readonly Readonly<{ name: string; type: TargetColumn["type"] }>[];
  /** The batch's rows; `numbered` puts each row's number and line before its columns. */
  text(batch: Buffer, numbered: boolean): Buffer;
}>;

export function targetCopy(target: TargetSnapshot, head: BatchHead): TargetCopy {
  const index = new Map(head.columns.map((name, i) => [name, i]));
  const landed = target.columns.flatMap((column) => {
    const at = index.get(column.header) ?? -1;
    // A column the header does not name and without a default is left to the table.
    if (at < 0 && column.default === undefined) return [];
    const rewrite = rewriteOf(column);
    const slot: Slot = {
      at,
      empty:
        column.default === undefined
          ? NULL_TEXT
          : Buffer.from(valueText(column, rewrite, column.default)),
      ...(rewrite ? { rewrite } : {}),
      ...(column.timeZone === undefined ? {} : { suffix: Buffer.from(` ${column.timeZone}`) }),
    };
    return [{ column, slot }];
  });
  const slots = landed.map(({ slot }) => slot);
  const width = head.columns.length;
  // What a row may add to its bytes in the batch: its number and line, defaults, zones,
  // dates rewritten (at most ":00" and a separator longer), tabs.
  const extraPerRow =
    48 +
    slots.reduce(
      (sum, s) => sum + s.empty.length + (s.suffix?.length ?? 0) + (s.rewrite ? 8 : 0) + 1,
      0,
    );

  return {
    columns: landed.map(({ column }) => ({ name: column.name, type: column.type })),
    text(batch, numbered) {
      const open = rowsOpen(batch);
      const out = Buffer.allocUnsafe(batch.length - open + rowCount(batch, open) * extraPerRow);
      const starts = new Int32Array(width);
      const ends = new Int32Array(width);
      const escapes = new Uint8Array(width);
      const lines = head.lines;
      let step = 0;
      let w = 0;
      let line = 0;
      for (let at = open + ROWS_OPEN.length; ; ) {
        const end = batch.indexOf(NEWLINE, at);
        if (end < 0) break;
        line++;
        const rowStart = at + ROW_NUMBER_AT;
        const rowEnd = rowNumberEnd(batch, at, end, line);
        let p = rowEnd + VALUES_AFTER;
        for (let k = 0; k < width; k++) {
          if (k > 0 && batch[p++] !== COMMA) throw malformed(line);
          if (batch[p] !== QUOTE) throw malformed(line);
          starts[k] = ++p;
          let escaped = 0;
          for (let b = batch[p]; p < end && b !== QUOTE; b = batch[p]) {
            if (b === BACKSLASH) {
              escaped = 1;
              p += 2;
            } else p++;
          }
          if (p >= end) throw malformed(line);
          escapes[k] = escaped;
          ends[k] = p++;
        }
        checkRowClosed(batch, p, end, line);

        if (numbered) {
          const row = Number(batch.toString("latin1", rowStart, rowEnd));
          while (step + 1 < lines.length && (lines[step + 1]?.[0] as number) <= row) step++;
          const from = lines[step];
          // A batch that names no lines is from before they were kept: a row a line.
          const rowLine = from ? row + from[1] - from[0] : row + 1;
          w += batch.copy(out, w, rowStart, rowEnd);
          out[w++] = TAB;
          w += out.write(String(rowLine), w, "latin1");
          out[w++] = TAB;
        }
        for (let c = 0; c < slots.length; c++) {
          if (c > 0) out[w++] = TAB;
          const slot = slots[c] as Slot;
          const s = slot.at < 0 ? 0 : (starts[slot.at] as number);
          const e = slot.at < 0 ? 0 : (ends[slot.at] as number);
          if (s === e) {
            w += slot.empty.copy(out, w);
            continue;
          }
          if (slot.rewrite) {
            // A value that passed its format's check is digits and separators: no escapes.
            const value = batch.toString("latin1", s, e);
            w += out.write(
              value.replace(slot.rewrite.pattern, slot.rewrite.replacement),
              w,
              "latin1",
            );
          } else if (escapes[slot.at] === 1) {
            w = copyValue(batch, s, e, out, w);
          } else {
            w += copyRun(batch, s, e, out, w);
          }
          if (slot.suffix) w += slot.suffix.copy(out, w);
        }
        out[w++] = NEWLINE;
        at = end + 1;
      }
      return out.subarray(0, w);
    },
  };
}

/**
 * The JSON string between `s` and `e` as COPY text, written at `w`; the new end. JSON's
 * escapes \\ \b \f \n \r \t are COPY's too and stay; \" and \/ become the character; a
 * \u escape (a control character or a broken surrogate) takes the slow way, decoded.
 */
function copyValue(batch: Buffer, s: number, e: number, out: Buffer, w: number): number {
  const start = w;
  let from = s;
  for (let p = s; p < e; ) {
    if (batch[p] !== BACKSLASH) {
      p++;
      continue;
    }
    const escaped = batch[p + 1] as number;
    if (escaped === LETTER_U) {
      const value = JSON.parse(batch.toString("utf8", s - 1, e + 1)) as string;
      return start + out.write(copyEscaped(value), start, "utf8");
    }
    w += batch.copy(out, w, from, p);
    if (escaped === QUOTE || escaped === SLASH) {
      out[w++] = escaped;
    } else {
      out[w++] = BACKSLASH;
      out[w++] = escaped;
    }
    p += 2;
    from = p;
  }
  return w + batch.copy(out, w, from, e);
}

/**
 * The staging table's own columns, each row's number and line: a `$` keeps them apart from
 * every column of a target, whose names are lower-case letters, digits and `_`.
 */
export const STAGED_ROW = "sluice$row";
export const STAGED_LINE = "sluice$line";

/**
 * The session's staging table for a target's columns: typed as they are, so that COPY
 * converts the values, with each row's number and line first. Temporary, emptied at every
 * commit, and named by its columns so that a session keeps one per shape.
 */
export function stagingTable(copy: TargetCopy): { name: string; create: string } {
  const shape = copy.columns.map((c) => `${c.name} ${c.type}`).join(",");
  const name = `pg_temp.sluice_stage_${createHash("sha256").update(shape).digest("hex").slice(0, 20)}`;
  const columns = copy.columns.map((c) => `${quoteIdent(c.name)} ${c.type}`);
  return {
    name,
    create: `create temp table if not exists ${name.slice("pg_temp.".length)} (${STAGED_ROW} bigint, ${STAGED_LINE} bigint, ${columns.join(", ")}) on commit delete rows`,
  };
}
