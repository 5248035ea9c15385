// The controller's Kubernetes side against the real API server, as the chart's controller
// ServiceAccount with a token the server issued: Lease election and Events, under the
// chart's Role. The same cases as test/controller-kubernetes.test.ts, which runs them
// against a stand-in.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { CoordinationV1Api } from "@kubernetes/client-node";
import { NETWORK } from "../../scripts/cluster/paths.ts";
import { createKubeReporter } from "../../src/controller/kube-reporter.ts";
import { type KubeClients, kubeClients, statusOf } from "../../src/controller/kubernetes.ts";
import { createLeaderElector } from "../../src/controller/leader-election.ts";
import { leaseReplicas } from "../support/lease-replicas.ts";
import {
  createNamespace,
  deleteNamespace,
  installChart,
  kubeconfigAt,
  kubectl,
  kubectlJson,
  serviceAccountKubeconfig,
} from "./cluster.ts";

const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

let namespace: string;
let clients: KubeClients;
let workerUid: string;
before(async () => {
  namespace = await createNamespace("sluice-controller");
  // The chart's objects, the controller's Role and ServiceAccount among them; no pods.
  await installChart(namespace, { API_KEYS: "acme:k3y" }, [
    "api.replicas=0",
    "worker.replicas=0",
    "controller.replicas=0",
  ]);
  clients = kubeClients(
    (await serviceAccountKubeconfig(namespace, "sluice-controller")).kubeConfig,
  );
  workerUid = (await kubectlJson(["--namespace", namespace, "get", "deployment", "sluice-worker"]))
    .metadata.uid;
});
after(() => deleteNamespace(namespace));

/** Replicas sharing one clock, which the test moves; over the controller's own login. */
const replicas = (leaseName: string, api = () => clients.coordination) =>
  leaseReplicas(api, namespace, leaseName);

const lease = async (name: string) =>
  (await kubectlJson(["--namespace", namespace, "get", "lease", name])) as {
    metadata: { resourceVersion: string };
    spec: Record<string, any>;
  };

describe("leader election on the API server", () => {
  test("the first replica creates the Lease and leads, then renews it", async (t) => {
    const { elector, advance } = replicas("first");
    const a = elector("controller-a");
    assert.equal(await a.acquireOrRenew(), true);
    assert.equal(a.isLeader(), true);
    const created = await lease("first");
    assert.equal(created.spec.holderIdentity, "controller-a");
    assert.equal(created.spec.leaseDurationSeconds, 15);
    assert.match(created.spec.renewTime, MICRO_TIME);
    assert.equal(created.spec.leaseTransitions, 0);

    advance(5);
    assert.equal(await a.acquireOrRenew(), true);
    const renewed = await lease("first");
    assert.equal(renewed.spec.holderIdentity, "controller-a");
    assert.notEqual(renewed.spec.renewTime, created.spec.renewTime);
    assert.equal(renewed.spec.acquireTime, created.spec.acquireTime, "renewing is not acquiring");
    assert.equal(renewed.spec.leaseTransitions, 0);
    t.diagnostic(
      `resourceVersion ${created.metadata.resourceVersion} -> ${renewed.metadata.resourceVersion}`,
    );
  });

  test("another replica waits while the lease is renewed, and takes over once it expires", async (t) => {
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
    assert.equal((await lease("takeover")).spec.holderIdentity, "controller-a");

    advance(10);
    assert.equal(await b.acquireOrRenew(), false, "not expired yet by b's own clock");
    advance(6);
    assert.equal(await b.acquireOrRenew(), true);
    const taken = await lease("takeover");
    assert.equal(taken.spec.holderIdentity, "controller-b");
    assert.equal(taken.spec.leaseTransitions, 1);

    assert.equal(await a.acquireOrRenew(), false);
    assert.equal(a.isLeader(), false);
    assert.equal((await lease("takeover")).spec.holderIdentity, "controller-b");
    t.diagnostic(`leaseTransitions ${taken.spec.leaseTransitions}`);
  });

  test("a write that loses the race gets 409 Conflict and does not lead", async (t) => {
    // Another writer really updates the Lease between this replica's read and its write.
    let raceOnce = false;
    const racing = (): CoordinationV1Api => {
      const api = Object.create(clients.coordination) as CoordinationV1Api;
      api.readNamespacedLease = async (params) => {
        const read = await clients.coordination.readNamespacedLease(params);
        if (raceOnce) {
          raceOnce = false;
          await kubectl([
            "--namespace",
            namespace,
            "annotate",
            "lease",
            params.name,
            "--overwrite",
            `sluice.test/touched=${Date.now()}`,
          ]);
        }
        return read;
      };
      return api;
    };
    const { elector, advance } = replicas("conflict", racing);
    const a = elector("controller-a");
    assert.equal(await a.acquireOrRenew(), true);
    advance(5);
    raceOnce = true;
    const before = (await lease("conflict")).spec.renewTime;
    assert.equal(await a.acquireOrRenew(), false);
    assert.equal(a.isLeader(), false);
    assert.equal(
      (await lease("conflict")).spec.renewTime,
      before,
      "the losing write changed nothing",
    );
    advance(5);
    assert.equal(await a.acquireOrRenew(), true, "the next renewal wins again");
    t.diagnostic("409 on the raced update, lead regained on the next");
  });

  test("two replicas starting together: exactly one leads", async (t) => {
    const { elector } = replicas("together");
    const results = await Promise.all(
      [elector("controller-a"), elector("controller-b")].map((e) => e.acquireOrRenew()),
    );
    assert.deepEqual(
      results.filter((leading) => leading),
      [true],
    );
    t.diagnostic(`holder ${(await lease("together")).spec.holderIdentity}`);
  });

  test("a replica that stops gives the lease up, and another takes it at once", async (t) => {
    const { elector } = replicas("release");
    const a = elector("controller-a");
    const b = elector("controller-b");
    assert.equal(await a.acquireOrRenew(), true);
    assert.equal(await b.acquireOrRenew(), false);
    await a.release();
    const released = await lease("release");
    assert.equal(released.spec.holderIdentity ?? "", "");
    assert.equal(await b.acquireOrRenew(), true, "no waiting for the lease to expire");
    t.diagnostic(`released lease holder "${released.spec.holderIdentity ?? ""}"`);
  });

  test("an unreachable API server means not leading", async (t) => {
    const port = 1 + Math.floor(Math.random() * 1000);
    const elector = createLeaderElector({
      api: kubeClients(kubeconfigAt(`https://${NETWORK.nodeIp}:${port}`)).coordination,
      namespace,
      leaseName: "unreachable",
      identity: "controller-a",
      leaseDurationSeconds: 15,
    });
    const error = await elector.acquireOrRenew().then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(error, "no API server, no lease");
    assert.equal(elector.isLeader(), false);
    t.diagnostic(error.message.split("\n")[0] ?? "");
  });
});

describe("events on the API server", () => {
  const reporter = (workerDeployment = "sluice-worker") =>
    createKubeReporter({
      core: clients.core,
      apps: clients.apps,
      namespace,
      workerDeployment,
      instance: "controller-a",
    });
  const events = async () =>
    (await kubectlJson(["--namespace", namespace, "get", "events"])).items as any[];

  test("a stuck upload is a Warning Event on the worker Deployment", async (t) => {
    await reporter().report({
      type: "Warning",
      reason: "UploadStuck",
      uploadId: "3f1c0d3e-0000-4000-8000-000000000001",
      episode: 1_764_331_200_000,
      message: "Upload 3f1c0d3e-0000-4000-8000-000000000001 has made no progress for 2m 0s",
    });
    const event = (await events()).find((e) => e.reason === "UploadStuck");
    assert.ok(event);
    assert.equal(event.type, "Warning");
    assert.deepEqual(event.involvedObject, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "sluice-worker",
      namespace,
      uid: workerUid,
    });
    assert.equal(event.source.component, "sluice-controller");
    assert.equal(event.reportingComponent, "sluice-controller");
    assert.equal(event.reportingInstance, "controller-a");
    assert.equal(event.count, 1);
    // What `kubectl describe deployment` shows under Events.
    const described = await kubectl([
      "--namespace",
      namespace,
      "describe",
      "deployment",
      "sluice-worker",
    ]);
    assert.match(described, /Warning\s+UploadStuck\s+.*has made no progress for 2m 0s/);
    t.diagnostic(`Event ${event.metadata.name} on Deployment uid ${workerUid}`);
  });

  test("the same report made twice leaves one Event", async (t) => {
    const report = {
      type: "Normal",
      reason: "UploadRecovered",
      uploadId: "3f1c0d3e-0000-4000-8000-000000000002",
      episode: 1_764_331_260_000,
      message: "Upload 3f1c0d3e-0000-4000-8000-000000000002 is moving again",
    } as const;
    await reporter().report(report);
    await reporter().report(report);
    const recovered = (await events()).filter(
      (e) => e.reason === "UploadRecovered" && e.message.includes("0002"),
    );
    assert.equal(recovered.length, 1);
    assert.equal(recovered[0].count, 1);
    // The server refuses a second Event of that name: that is what keeps it single.
    const again = await clients.core
      .createNamespacedEvent({
        namespace,
        body: { ...recovered[0], metadata: { name: recovered[0].metadata.name, namespace } },
      })
      .then(
        () => 201,
        (err: unknown) => statusOf(err),
      );
    assert.equal(again, 409);
    t.diagnostic(`1 Event, a repeated create answered ${again}`);
  });

  test("without the Deployment the Event still names it", async (t) => {
    await reporter("renamed-worker").report({
      type: "Warning",
      reason: "UploadStuck",
      uploadId: "3f1c0d3e-0000-4000-8000-000000000003",
      episode: 1,
      message: "Upload 3f1c0d3e-0000-4000-8000-000000000003 has made no progress for 5m 0s",
    });
    const event = (await events()).find((e) => e.message.includes("0003"));
    assert.deepEqual(event?.involvedObject, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "renamed-worker",
      namespace,
    });
    t.diagnostic(`Event ${event.metadata.name}`);
  });
});
