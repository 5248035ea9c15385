// --target: Sluice into a target (a typed table with a primary key, in the tenant's schema,
// made by the target), first empty (insert) beside psql \copy into that same table, then
// holding half the keys (upsert).
import { copyBaseline, sql } from "./baselines.ts";
import { cleanedUp } from "./cleanup.ts";
import { CSV_COLUMNS } from "./generate-csv.ts";
import { cpuPerRow, fmt, printTable, type Result, round } from "./report.ts";
import { sluiceRun } from "./sluice-run.ts";

const TARGET_TABLE = "tenant_default.bench";

function benchTarget(mode: "insert" | "upsert") {
  const types: Record<(typeof CSV_COLUMNS)[number], string> = {
    id: "bigint",
    quantity: "integer",
    price: "numeric",
    ordered_on: "date",
    updated_at: "timestamptz",
    active: "boolean",
    name: "text",
    code: "text",
    comment: "text",
    description: "text",
    note: "text",
  };
  return {
    table: "bench",
    mode,
    key: ["id"],
    columns: CSV_COLUMNS.map((name) => ({
      name,
      type: types[name],
      // The file's timestamps are JavaScript's ISO strings, 2000-01-01T00:00:00.000Z.
      ...(name === "updated_at" ? { format: "YYYY-MM-DDTHH:MI:SS.FFTZ" } : {}),
    })),
  };
}

async function putTarget(apiUrl: string, definition: unknown): Promise<void> {
  const response = await fetch(`${apiUrl}/targets/bench`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(definition),
  });
  if (!response.ok) {
    throw new Error(`PUT /targets/bench answered ${response.status}: ${await response.text()}`);
  }
}

export async function targetRuns(csv: string, rows: number, bytes: number, dir: string) {
  /** Sluice into the target in `mode`, its table readied by `ready` once the programs run. */
  const intoTarget = (mode: "insert" | "upsert", ready: (database: string) => Promise<void>) =>
    cleanedUp(() =>
      sluiceRun(csv, rows, bytes, dir, {
        name: "bench",
        table: TARGET_TABLE,
        async prepare(apiUrl, database) {
          await putTarget(apiUrl, benchTarget(mode));
          await ready(database);
        },
      }),
    );
  let copy: Result | undefined;
  console.log("Sluice into a target, empty table (insert), beside psql \\copy into that table …");
  const insert = await intoTarget("insert", async (database) => {
    console.log("  psql \\copy into the target's table …");
    copy = await copyBaseline(csv, rows, database, dir, TARGET_TABLE);
    console.log(`  ${copy.wall.toFixed(1)} s; emptied for Sluice`);
    await sql(database, `truncate ${TARGET_TABLE}`);
  });
  console.log("Sluice into a target holding half the keys (upsert) …");
  let half = 0;
  const upsert = await intoTarget("upsert", async (database) => {
    await copyBaseline(csv, rows, database, dir, TARGET_TABLE);
    await sql(database, `delete from ${TARGET_TABLE} where id % 2 = 0`);
    await sql(database, `vacuum analyze ${TARGET_TABLE}`);
    const [counted] = await sql<{ n: number }>(
      database,
      `select count(*)::int as n from ${TARGET_TABLE}`,
    );
    half = counted?.n ?? 0;
    console.log(`  the table holds ${fmt(half)} of the ${fmt(rows)} keys`);
  });
  if (!copy) throw new Error("the psql \\copy baseline did not run");
  const rate = (r: Result) => rows / r.wall;
  const baseline = copy;
  const named = (r: Result, name: string) => ({ ...r, name });
  printTable(
    [named(insert.result, "target"), named(upsert.result, "upsert"), baseline],
    rows,
    baseline,
    null,
  );
  return {
    rows,
    bytes,
    target_rows_per_s: Math.round(rate(insert.result)),
    target_seconds: round(insert.result.wall, 3),
    target_upload_seconds: round(insert.uploadSeconds, 3),
    upsert_rows_per_s: Math.round(rate(upsert.result)),
    upsert_seconds: round(upsert.result.wall, 3),
    upsert_keys_present: half,
    copy_rows_per_s: Math.round(rate(baseline)),
    copy_seconds: round(baseline.wall, 3),
    ratio_vs_copy: round(rate(insert.result) / rate(baseline), 4),
    upsert_ratio_vs_copy: round(rate(upsert.result) / rate(baseline), 4),
    api_peak_mb: round(insert.memory.api?.peakMb ?? Number.NaN, 1),
    worker_peak_mb: round(insert.memory.worker?.peakMb ?? Number.NaN, 1),
    cpu_us_per_row: {
      target: cpuPerRow(insert.result, rows),
      upsert: cpuPerRow(upsert.result, rows),
      copy: cpuPerRow(baseline, rows),
    },
    node: process.version,
  };
}
