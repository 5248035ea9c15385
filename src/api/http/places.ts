// Places a process gives out for work that holds resources for a while (bodies being
// received, progress streams), bounded in all and per tenant, so that one tenant cannot
// take every place and hold back the others.

/** Why a place was refused. */
export type Refusal = "full" | "tenant-full";

export type Places = Readonly<{
  /** A place for `tenant`, as the function that gives it back (once), or why not. */
  take(tenant: string): (() => void) | Refusal;
  held(): number;
}>;

/**
 * A tenant's share of `max` places, never more than `cap`: half of them when there are other
 * tenants to leave room for, all of them when there are none (authentication off, or keys of
 * one tenant only).
 */
export function tenantShare(max: number, tenants: number, cap = Number.POSITIVE_INFINITY): number {
  return Math.max(1, Math.min(cap, tenants > 1 ? Math.floor(max / 2) : max));
}

export function createPlaces(
  max: number,
  perTenant: number,
  onChange?: (held: number) => void,
): Places {
  let held = 0;
  const byTenant = new Map<string, number>();
  return {
    take(tenant) {
      if (held >= max) return "full";
      const own = byTenant.get(tenant) ?? 0;
      if (own >= perTenant) return "tenant-full";
      held++;
      byTenant.set(tenant, own + 1);
      onChange?.(held);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        held--;
        const left = (byTenant.get(tenant) ?? 1) - 1;
        if (left === 0) byTenant.delete(tenant);
        else byTenant.set(tenant, left);
        onChange?.(held);
      };
    },
    held: () => held,
  };
}
