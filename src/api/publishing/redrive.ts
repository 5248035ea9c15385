// Re-drive of dead-lettered batches: their uploads reopened, their attempts reset, and the
// batches their publishing had not sent yet published. Shared by the api's
// POST /uploads/:id/redrive and `npm run redrive`.

import type { Broker } from "../../core/broker/broker.ts";
import { type RedriveResult, redriveDeadLetters } from "../../core/broker/dead-letters.ts";
import type { Db } from "../../core/db/database.ts";
import { reopenFailed } from "../../core/db/uploads.repository.ts";
import type { StatusStore } from "../../core/status/status-store.ts";
import type { BatchPublisher } from "./batch-publisher.ts";

export type RedriveDeps = Readonly<{
  db: Db;
  broker: Broker;
  status: StatusStore;
  namespace: string;
}>;

export type UploadsRedrive = RedriveResult & {
  /** The uploads reopened whose stored batches not yet published are being published. */
  publishing: string[];
};

/**
 * Each upload is reopened before its first batch goes back: a batch landing on an upload
 * still marked failed would count, and leave it failed with every batch landed.
 */
export function redrive(deps: RedriveDeps, uploadId?: string): Promise<RedriveResult> {
  return redriveDeadLetters(deps.broker, deps.namespace, {
    uploadId,
    async reopen(id) {
      const open = await reopenFailed(deps.db, id);
      // The view follows anyway once a batch lands; Redis being away stops nothing here.
      if (open) await deps.status.refresh(id).catch(() => undefined);
      return open;
    },
  });
}

/**
 * Re-drives, then publishes the rest of each reopened upload, which an upload that failed
 * while its publishing waited for landing still has stored (in the UPLOAD_DIR of the api
 * that received it: only a process with that folder can publish them).
 */
export async function redriveUploads(
  deps: RedriveDeps & { publisher: Pick<BatchPublisher, "resume"> },
  uploadId?: string,
): Promise<UploadsRedrive> {
  const result = await redrive(deps, uploadId);
  const publishing: string[] = [];
  const reopened = uploadId === undefined ? [...result.moved.keys()] : [uploadId];
  for (const id of reopened) {
    if (await deps.publisher.resume(id)) publishing.push(id);
  }
  return { ...result, publishing };
}
