// Holds on the workers' landing, taken by a session of the test's own: while one is held no
// batch lands, so an upload is certainly still under way while something is done to it.
import pg from "pg";
import { landingLockName } from "../../src/core/db/uploads.repository.ts";

/**
 * Holds every worker's landing in that database, taken before an upload starts: a batch's
 * claim (a row of upload_batches, which only workers write) waits behind this table lock, so
 * no batch lands however early a worker gets it. The release may be called more than once.
 */
export async function holdAllLanding(databaseUrl: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query("begin");
  await client.query("lock table upload_batches in exclusive mode");
  let released: Promise<void> | undefined;
  return () => {
    released ??= client.query("commit").then(() => client.end());
    return released;
  };
}

/**
 * Holds every worker's landing of one upload (the lock a cancel takes): once it returns, the
 * batches being landed have committed and no other lands until the release. A hold whose
 * session PostgreSQL ended (a restart) has gone with it, and its release does nothing more.
 */
export async function holdLanding(databaseUrl: string, id: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  let ended = false;
  client.on("error", () => {
    ended = true;
  });
  client.on("end", () => {
    ended = true;
  });
  await client.connect();
  const lock = "hashtextextended($1, 0)";
  await client.query(`select pg_advisory_lock(${lock})`, [landingLockName(id)]);
  return async () => {
    if (ended) return;
    await client.query(`select pg_advisory_unlock(${lock})`, [landingLockName(id)]);
    await client.end();
  };
}
