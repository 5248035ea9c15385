// Re-drive of dead-lettered batches: their uploads reopened, their attempts reset. Shared by
// the api's POST /uploads/:id/redrive and `npm run redrive`.
import type { Broker } from "./broker/broker.ts";
import { type RedriveResult, redriveDeadLetters } from "./broker/dead-letters.ts";
import type { Db } from "./db/database.ts";
import { reopenFailed } from "./db/uploads.repository.ts";
import type { StatusStore } from "./status/status.store.ts";

export type RedriveDeps = Readonly<{
  db: Db;
  broker: Broker;
  status: StatusStore;
  namespace: string;
}>;

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
