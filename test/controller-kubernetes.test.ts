// The controller's Kubernetes side, with the real client against a small API server on
// 127.0.0.1: Lease election (create, renew, take over after expiry, 409 conflicts) and the
// Events it creates.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createKubeReporter } from "../src/controller/kube-reporter.ts";
import { kubeClients } from "../src/controller/kubernetes.ts";
import { createLeaderElector } from "../src/controller/leader-election.ts";
import { deploymentInvolved, type FakeKube, startFakeKube } from "./support/fake-kube.ts";
import { leaseReplicas } from "./support/lease-replicas.ts";

const NAMESPACE = "sluice";
const DEPLOYMENT_UID = "5b0a6e1c-8d0e-4b7e-9a43-000000000001";
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

let fake: FakeKube;
before(async () => {
  fake = await startFakeKube({
    deployments: [{ namespace: NAMESPACE, name: "sluice-worker", uid: DEPLOYMENT_UID }],
  });
});
after(() => fake.close());

/** Replicas sharing one clock, which the test moves. */
const replicas = (leaseName: string) =>
  leaseReplicas(
    () => kubeClients(fake.kubeConfig(NAMESPACE)).coordination,
    NAMESPACE,
    leaseName,
    Date.parse("2026-11-28T12:00:00.000Z"),
  );

const leaseWrites = (name: string) =>
  fake.requests.filter(
    (r) =>
      r.resource === "leases" &&
      (r.verb === "create" || r.verb === "update") &&
      (r.name ?? r.body?.metadata?.name) === name,
  );
const lease = (name: string) =>
  fake.objects("leases").find((l) => l.metadata.name === name) as
    | { spec: Record<string, unknown> }
    | undefined;

describe("leader election", () => {
  test("the first replica creates the Lease and leads, then renews it", async () => {
    const { elector, advance } = replicas("first");
    const a = elector("controller-a");
    assert.equal(await a.acquireOrRenew(), true);
    assert.equal(a.isLeader(), true);
    const [created] = leaseWrites("first");
    assert.equal(created?.verb, "create");
    assert.equal(created?.group, "coordination.k8s.io");
    assert.equal(created?.authorization, "Bearer fake-token");
    assert.equal(created?.body.spec.holderIdentity, "controller-a");
    assert.equal(created?.body.spec.leaseDurationSeconds, 15);
    assert.match(created?.body.spec.renewTime, MICRO_TIME, "MicroTime, as the API server requires");

    advance(5);
    assert.equal(await a.acquireOrRenew(), true);
    const renewal = leaseWrites("first")[1];
    assert.equal(renewal?.verb, "update");
    assert.equal(renewal?.body.spec.holderIdentity, "controller-a");
    assert.notEqual(renewal?.body.spec.renewTime, created?.body.spec.renewTime);
    assert.equal(
      renewal?.body.spec.acquireTime,
      created?.body.spec.acquireTime,
      "renewing is not acquiring",
    );
    assert.equal(renewal?.body.spec.leaseTransitions, 0);
  });

  test("another replica waits while the lease is renewed, and takes over once it expires", async () => {
    const { elector, advance } = replicas("takeover");
    const a = elector("controller-a");
    const b = elector("controller-b");
    assert.equal(await a.acquireOrRenew(), true);
    assert.equal(await b.acquireOrRenew(), false);
    for (let i = 0; i < 3; i++) {
      advance(10);
      assert.equal(await a.acquireOrRenew(), true);
      assert.equal(await b.acquireOrRenew(), false, "a renewed lease never expires");
    }
    const writesBefore = leaseWrites("takeover").filter(
      (w) => w.body.spec.holderIdentity === "controller-b",
    );
    assert.deepEqual(writesBefore, [], "a follower writes nothing");

    // controller-a stops renewing (it hangs, or its node is gone).
    advance(10);
    assert.equal(await b.acquireOrRenew(), false, "not expired yet by b's own clock");
    advance(6);
    assert.equal(await b.acquireOrRenew(), true);
    assert.equal(lease("takeover")?.spec.holderIdentity, "controller-b");
    assert.equal(lease("takeover")?.spec.leaseTransitions, 1);

    // controller-a comes back, finds it has lost the lease, and stops reporting.
    assert.equal(await a.acquireOrRenew(), false);
    assert.equal(a.isLeader(), false);
    assert.equal(lease("takeover")?.spec.holderIdentity, "controller-b");
  });

  test("a write that loses the race gets 409 Conflict and does not lead", async () => {
    const { elector, advance } = replicas("conflict");
    const a = elector("controller-a");
    assert.equal(await a.acquireOrRenew(), true);
    advance(5);
    // Another replica updates the Lease between a's read and a's write.
    fake.conflictOnce("update", "leases");
    assert.equal(await a.acquireOrRenew(), false);
    assert.equal(a.isLeader(), false);
    advance(5);
    assert.equal(await a.acquireOrRenew(), true, "the next renewal wins again");
  });

  test("two replicas starting together: exactly one leads", async () => {
    const { elector } = replicas("together");
    const results = await Promise.all(
      [elector("controller-a"), elector("controller-b")].map((e) => e.acquireOrRenew()),
    );
    assert.deepEqual(
      results.filter((leading) => leading),
      [true],
    );
  });

  test("a replica that stops gives the lease up, and another takes it at once", async () => {
    const { elector } = replicas("release");
    const a = elector("controller-a");
    const b = elector("controller-b");
    assert.equal(await a.acquireOrRenew(), true);
    assert.equal(await b.acquireOrRenew(), false);
    await a.release();
    assert.equal(lease("release")?.spec.holderIdentity, "");
    assert.equal(await b.acquireOrRenew(), true, "no waiting for the lease to expire");
  });

  test("an unreachable API server means not leading", async (t) => {
    const gone = await startFakeKube();
    t.after(() => gone.close());
    const elector = createLeaderElector({
      api: kubeClients(gone.kubeConfig()).coordination,
      namespace: NAMESPACE,
      leaseName: "unreachable",
      identity: "controller-a",
      leaseDurationSeconds: 15,
    });
    assert.equal(await elector.acquireOrRenew(), true);
    await gone.close();
    await assert.rejects(elector.acquireOrRenew());
    assert.equal(elector.isLeader(), false);
  });
});

describe("events", () => {
  const reporter = (workerDeployment = "sluice-worker") => {
    const clients = kubeClients(fake.kubeConfig(NAMESPACE));
    return createKubeReporter({
      core: clients.core,
      apps: clients.apps,
      namespace: NAMESPACE,
      workerDeployment,
      instance: "controller-a",
      now: () => Date.parse("2026-11-28T12:00:00.000Z"),
    });
  };
  const events = () => fake.events();

  test("a stuck upload is a Warning Event on the worker Deployment", async () => {
    await reporter().report({
      type: "Warning",
      reason: "UploadStuck",
      uploadId: "3f1c0d3e-0000-4000-8000-000000000001",
      episode: 1_764_331_200_000,
      message: "Upload 3f1c0d3e-0000-4000-8000-000000000001 has made no progress for 2m 0s",
    });
    const event = events().find((e) => e.reason === "UploadStuck");
    assert.ok(event);
    assert.equal(event.type, "Warning");
    assert.deepEqual(
      event.involvedObject,
      deploymentInvolved(NAMESPACE, "sluice-worker", DEPLOYMENT_UID),
    );
    assert.match(
      event.message,
      /3f1c0d3e-0000-4000-8000-000000000001 has made no progress for 2m 0s/,
    );
    assert.equal(event.metadata.namespace, NAMESPACE);
    assert.equal(event.source.component, "sluice-controller");
    assert.equal(event.reportingComponent, "sluice-controller");
    assert.equal(event.reportingInstance, "controller-a");
    assert.equal(event.firstTimestamp, "2026-11-28T12:00:00.000Z");
    assert.equal(event.count, 1);
  });

  test("the same report made twice leaves one Event", async () => {
    const report = {
      type: "Normal",
      reason: "UploadRecovered",
      uploadId: "3f1c0d3e-0000-4000-8000-000000000002",
      episode: 1_764_331_260_000,
      message: "Upload 3f1c0d3e-0000-4000-8000-000000000002 is moving again",
    } as const;
    await reporter().report(report);
    await reporter().report(report);
    const recovered = events().filter(
      (e) => e.reason === "UploadRecovered" && e.message.includes("0002"),
    );
    assert.equal(recovered.length, 1);
    const creates = fake.requests.filter(
      (r) => r.verb === "create" && r.resource === "events" && r.body.message === report.message,
    );
    assert.equal(creates.length, 2, "the second create was refused, not skipped");
  });

  test("without the Deployment the Event still names it", async () => {
    await reporter("renamed-worker").report({
      type: "Warning",
      reason: "UploadStuck",
      uploadId: "3f1c0d3e-0000-4000-8000-000000000003",
      episode: 1,
      message: "Upload 3f1c0d3e-0000-4000-8000-000000000003 has made no progress for 5m 0s",
    });
    const event = events().find((e) => e.message.includes("0003"));
    assert.deepEqual(event?.involvedObject, deploymentInvolved(NAMESPACE, "renamed-worker"));
  });
});
