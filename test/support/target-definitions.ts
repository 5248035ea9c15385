// Target definitions as a tenant PUTs them, for the tests that need a target to exist.

type Column = { name: string; type: string; [option: string]: unknown };

/** A target that upserts into `table` by its key `id`, a bigint, then `columns`. */
export const upsertById = (table: string, columns: Column[]) => ({
  table,
  mode: "upsert",
  key: ["id"],
  columns: [{ name: "id", type: "bigint" }, ...columns],
});
