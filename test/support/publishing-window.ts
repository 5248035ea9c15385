// An upload caught mid-publish: with landing held, the api publishes as many of its batches as
// MAX_BATCHES_IN_FLIGHT_PER_UPLOAD lets it and waits, the rest stored, so that what a test does
// next (a stop, a rollout) meets an upload half published.
import assert from "node:assert/strict";
import { acceptedUpload } from "./http.ts";
import { waitFor } from "./program.ts";
import type { TestEnv } from "./test-env.ts";

/**
 * Posts `csv` to the api at `base`, checks it makes `batches` batches, and gives its id once
 * `window` of them are published.
 */
export async function uploadWaitingForLanding(
  test: TestEnv,
  base: string,
  csv: string,
  { batches, window }: { batches: number; window: number },
): Promise<string> {
  const { id, batches: counted } = await acceptedUpload(base, csv);
  assert.equal(counted.total, batches);
  await waitFor("publishing to wait for landing", async () => {
    const { rows } = await test.sql.query("select batches_published from uploads where id = $1", [
      id,
    ]);
    return rows[0].batches_published >= window;
  });
  return id;
}
