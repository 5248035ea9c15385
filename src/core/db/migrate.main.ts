// `npm run migrate`: brings the database schema up to date and exits.
import { runMain } from "../main-runner.ts";
import { openDatabase } from "../services.ts";

runMain("migrate", async ({ config, log, shutdown }) => {
  // Migrating is this program's job, whatever MIGRATE_AT_START says for the others.
  const { db } = await openDatabase({ ...config, migrateAtStart: true }, log);
  await db.destroy();
  log.info("database schema is up to date");
  await shutdown.run("done");
  process.exit(0);
});
