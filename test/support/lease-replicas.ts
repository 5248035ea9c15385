// Controller replicas electing a leader over one Lease, on a clock the test moves: what the
// leader election checks share, against the stand-in and against the real API server.
import type { CoordinationV1Api } from "@kubernetes/client-node";
import { createLeaderElector } from "../../src/controller/leader-election.ts";

/** Electors for `leaseName` in `namespace`, each over `api()`, and the clock's hand. */
export function leaseReplicas(
  api: () => CoordinationV1Api,
  namespace: string,
  leaseName: string,
  start = Date.now(),
) {
  let now = start;
  const elector = (identity: string) =>
    createLeaderElector({
      api: api(),
      namespace,
      leaseName,
      identity,
      leaseDurationSeconds: 15,
      now: () => now,
    });
  return {
    elector,
    advance: (seconds: number) => {
      now += seconds * 1000;
    },
  };
}
