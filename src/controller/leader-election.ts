// One controller replica reports at a time: the one holding a coordination.k8s.io/v1 Lease.
import { type CoordinationV1Api, type V1Lease, V1MicroTime } from "@kubernetes/client-node";
import { statusOf } from "./kubernetes.ts";

export type LeaderElectorOptions = Readonly<{
  api: CoordinationV1Api;
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationSeconds: number;
  now?: () => number;
}>;

export type LeaderElector = Readonly<{
  /** Takes the lease if it is free or expired, renews it if held; true while leading. */
  acquireOrRenew(): Promise<boolean>;
  isLeader(): boolean;
  /** Lets another replica take over at once instead of after the lease expires. */
  release(): Promise<void>;
}>;

export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  const { api, namespace, leaseName: name, identity, leaseDurationSeconds } = options;
  const now = options.now ?? Date.now;
  let leading = false;
  // When this replica last saw the lease record change. Expiry is measured on this
  // replica's own clock from that moment, never from the holder's timestamps, so clock
  // skew between nodes cannot make a live lease look expired.
  let observed: { record: string; at: number } | undefined;

  const observe = (lease: V1Lease, at: number) => {
    const record = `${lease.spec?.holderIdentity ?? ""}@${String(lease.spec?.renewTime ?? "")}`;
    if (observed?.record !== record) observed = { record, at };
    return observed;
  };

  /** Creates, renews or takes over; a 409 means another replica wrote first. */
  async function write(attempt: () => Promise<V1Lease>, at: number): Promise<boolean> {
    try {
      observe(await attempt(), at);
      leading = true;
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      leading = false;
    }
    return leading;
  }

  async function acquireOrRenew(): Promise<boolean> {
    const at = now();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      const body: V1Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: new V1MicroTime(at),
          renewTime: new V1MicroTime(at),
          leaseTransitions: 0,
        },
      };
      return write(() => api.createNamespacedLease({ namespace, body }), at);
    }

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const mine = holder === identity;
    const seen = observe(lease, at);
    const expired = at - seen.at >= (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (!mine && holder !== "" && !expired) {
      leading = false;
      return false;
    }
    // The resourceVersion read above makes the update fail with 409 if anyone wrote since.
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: new V1MicroTime(at),
        acquireTime: mine ? spec.acquireTime : new V1MicroTime(at),
        leaseTransitions: mine ? spec.leaseTransitions : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    return write(() => api.replaceNamespacedLease({ name, namespace, body }), at);
  }

  return {
    async acquireOrRenew() {
      try {
        return await acquireOrRenew();
      } catch (err) {
        // Unable to renew, this replica can no longer be sure it leads.
        leading = false;
        throw err;
      }
    },
    isLeader: () => leading,
    async release() {
      if (!leading) return;
      leading = false;
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const body: V1Lease = {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: new V1MicroTime(now()),
        },
      };
      await api.replaceNamespacedLease({ name, namespace, body }).catch((err: unknown) => {
        if (statusOf(err) !== 409) throw err;
      });
    },
  };
}
