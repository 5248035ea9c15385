// `npm run migrate`: brings the database schema up to date and exits.
import { runMain } from "../main-runner.ts";
import { openDatabase } from "../services.ts";

runMain("migrate", async ({ config, log, shutdown }) => {
  const { db } = await openDatabase(config, log);
  await db.destroy();
  log.info("database schema is up to date");
  await shutdown.run("done");
  process.exit(0);
});
