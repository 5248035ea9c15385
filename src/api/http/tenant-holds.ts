// The upload bodies a tenant sends at once across every api replica, counted from the first
// byte: one Redis sorted set per tenant of request tokens, each scored with the moment its
// hold lapses. A replica renews its holds while their bodies arrive, so the holds of a replica
// that crashed lapse by themselves; every way a request ends gives its hold back.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { statusKeys } from "../../core/status/status-keys.ts";

/** A hold lapses this long after its last renewal: how long a crashed replica's places stay taken. */
const HOLD_MS = 30_000;
/** A third of the lapse, so that one renewal may fail or come late without losing the hold. */
const RENEW_MS = HOLD_MS / 3;

// Redis's clock, not the replicas': theirs may disagree.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: the tenant's set; ARGV: token, limit, lapse. 1 when the hold is taken. */
const TAKE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

/** KEYS: the tenant's set; ARGV: lapse, then the tokens to renew (those still held only). */
const RENEW = `${NOW}
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

export type TenantHolds = Readonly<{
  /** A hold for one body of `tenant`, as the function that gives it back, or undefined at the limit. */
  take(tenant: string): Promise<(() => Promise<void>) | undefined>;
}>;

export function createTenantHolds(redis: Redis, namespace: string, limit: number): TenantHolds {
  const keys = statusKeys(namespace);
  /** The tokens this replica holds, by tenant. */
  const held = new Map<string, Set<string>>();
  const timer = setInterval(() => {
    for (const [tenant, tokens] of held) {
      // A renewal that fails leaves the holds to lapse; the next one may succeed in time.
      void redis.eval(RENEW, 1, keys.receiving(tenant), HOLD_MS, ...tokens).catch(() => undefined);
    }
  }, RENEW_MS);
  timer.unref();

  return {
    async take(tenant) {
      const token = randomUUID();
      const key = keys.receiving(tenant);
      if ((await redis.eval(TAKE, 1, key, token, limit, HOLD_MS)) !== 1) return undefined;
      const tokens = held.get(tenant) ?? new Set<string>();
      tokens.add(token);
      held.set(tenant, tokens);
      let given = false;
      return async () => {
        if (given) return;
        given = true;
        tokens.delete(token);
        if (tokens.size === 0) held.delete(tenant);
        // Should Redis not hear it, the hold lapses by itself.
        await redis.zrem(key, token).catch(() => undefined);
      };
    },
  };
}
