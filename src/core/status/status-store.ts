// The fast view of each upload in Redis. PostgreSQL stays the truth: a missing view is
// rebuilt from it, and live progress only ever moves counters forward.
import type { Redis } from "ioredis";
import type { Db } from "../db/database.ts";
import { findUpload } from "../db/uploads.repository.ts";
import { toUploadView, type UploadView } from "../uploads/upload-view.ts";
import { statusKeys } from "./status-keys.ts";

/** Views of finished uploads stay a day; the table keeps them for good. */
const VIEW_TTL_SECONDS = 24 * 60 * 60;

// Applies a worker's progress only when it is newer than what the view holds: two workers
// may report out of commit order. A missing view is left missing for the next read to rebuild.
const ADVANCE = `
local current = redis.call('HGET', KEYS[1], 'batchesLanded')
if not current then return 0 end
if tonumber(ARGV[1]) <= tonumber(current) then return 0 end
local view = cjson.decode(redis.call('HGET', KEYS[1], 'view'))
view.batches.landed = tonumber(ARGV[1])
view.rowsLanded = tonumber(ARGV[2])
if view.status == 'queued' or view.status == 'processing' then view.status = ARGV[3] end
view.lastProgressAt = ARGV[4]
view.updatedAt = ARGV[4]
view.stalled = false
local encoded = cjson.encode(view)
redis.call('HSET', KEYS[1], 'view', encoded, 'batchesLanded', ARGV[1])
redis.call('PUBLISH', KEYS[2], encoded)
return 1
`;

// Replaces the view with one read from PostgreSQL, unless the view already shows more
// batches landed: a read made before a worker's commit may arrive after that worker's own,
// newer write, and must not take the view back.
const REPLACE = `
local current = redis.call('HGET', KEYS[1], 'batchesLanded')
if current and tonumber(ARGV[2]) < tonumber(current) then return 0 end
redis.call('HSET', KEYS[1], 'view', ARGV[1], 'batchesLanded', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1
`;

export type Progress = { batchesLanded: number; rowsLanded: number; status: UploadView["status"] };

export type StatusStore = ReturnType<typeof createStatusStore>;

export function createStatusStore(redis: Redis, db: Db, namespace: string) {
  const keys = statusKeys(namespace);

  async function write(view: UploadView): Promise<void> {
    await redis.eval(
      REPLACE,
      2,
      keys.upload(view.id),
      keys.progressChannel(view.id),
      JSON.stringify(view),
      view.batches.landed,
      VIEW_TTL_SECONDS,
    );
  }

  /** Reloads the view from PostgreSQL after a change of state, and announces it. */
  async function refresh(id: string): Promise<UploadView | undefined> {
    const record = await findUpload(db, id);
    if (!record) return undefined;
    const view = toUploadView(record);
    await write(view);
    return view;
  }

  return {
    refresh,

    async get(id: string): Promise<UploadView | undefined> {
      const cached = await redis.hget(keys.upload(id), "view");
      return cached ? (JSON.parse(cached) as UploadView) : refresh(id);
    },

    async advance(id: string, progress: Progress): Promise<void> {
      await redis.eval(
        ADVANCE,
        2,
        keys.upload(id),
        keys.progressChannel(id),
        progress.batchesLanded,
        progress.rowsLanded,
        progress.status,
        new Date().toISOString(),
      );
    },

    channel: keys.progressChannel,
  };
}
