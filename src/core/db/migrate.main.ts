// `npm run migrate`: brings the database schema up to date, makes the bucket with
// CREATE_BUCKET, and exits.
import { runMain } from "../program/main-runner.ts";
import { openDatabase, openStorage } from "../program/services.ts";

runMain("migrate", async ({ config, log, shutdown }) => {
  // Migrating is this program's job, whatever MIGRATE_AT_START says for the others.
  const { db } = await openDatabase({ ...config, migrateAtStart: true }, log);
  await db.destroy();
  log.info("database schema is up to date");
  // The programs may then run with rights on objects only, as they do on tables.
  if (config.s3.createBucket) {
    (await openStorage(config)).destroy();
    log.info({ bucket: config.s3.bucket }, "bucket exists");
  }
  await shutdown.run("done");
  process.exit(0);
});
