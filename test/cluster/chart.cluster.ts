// charts/sluice on the local cluster, installed the way docs/kubernetes.md tells users:
// Pod Security admission, the controller's RBAC as the API server judges it, and the
// controller program reporting to the API server as its own ServiceAccount.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KUBERNETES_PERMISSIONS } from "../../src/controller/kubernetes.ts";
import { render } from "../kubernetes/chart.ts";
import { validateObject } from "../kubernetes/strict-schema.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import type { Program } from "../support/program.ts";
import {
  getJson,
  type InProcess,
  spawnProgram,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "../support/stack.ts";
import {
  CHART,
  createNamespace,
  deleteNamespace,
  helm,
  installChart,
  kubectl,
  kubectlJson,
  kubectlResult,
  RELEASE,
  serviceAccountKubeconfig,
} from "./cluster.ts";
import { assertRecovered, assertStuckForWorkers, uploadEvent } from "./sluice-release.ts";

type ResourceRule = {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
};
const describeRule = (r: ResourceRule) =>
  `${r.verbs.join(",")} ${(r.apiGroups ?? []).join(",")}/${(r.resources ?? []).join(",")}` +
  (r.resourceNames ? `/${r.resourceNames.join(",")}` : "");

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

let namespace: string;
before(async () => {
  namespace = await createNamespace("sluice-chart");
});
after(() => deleteNamespace(namespace));

const ns = () => ["--namespace", namespace];
const serviceAccount = (program: string) =>
  `system:serviceaccount:${namespace}:${RELEASE}-${program}`;
const canI = async (as: string, verb: string, resource: string) => {
  const result = await kubectlResult([...ns(), "auth", "can-i", verb, resource, `--as=${as}`]);
  return result.stdout.trim();
};

describe("install", () => {
  test("helm install into a namespace enforcing the restricted Pod Security Standard", async (t) => {
    const started = Date.now();
    await installChart(namespace, {
      DATABASE_URL: "postgres://sluice:secret@postgresql:5432/sluice",
      REDIS_URL: "redis://redis:6379",
      RABBITMQ_URL: "amqp://sluice:secret@rabbitmq:5672",
      API_KEYS: "acme:k3y",
    });
    const labels = (await kubectlJson(["get", "namespace", namespace])).metadata.labels;
    assert.equal(labels["pod-security.kubernetes.io/enforce"], "restricted");
    const manifest = await kubectl([
      "--namespace",
      namespace,
      "get",
      "all,sa,role,rolebinding,pdb,cm",
      "-l",
      `app.kubernetes.io/instance=${RELEASE}`,
      "-o",
      "name",
    ]);
    const objects = manifest.trim().split("\n").filter(Boolean);
    assert.ok(objects.includes("deployment.apps/sluice-worker"), objects.join(", "));
    t.diagnostic(`${objects.length} objects in ${seconds(started)} (${CHART})`);
  });

  test("a pod breaking the restricted standard is refused", async (t) => {
    const refused = await kubectlResult([
      ...ns(),
      "run",
      "root-pod",
      "--image=sluice.invalid/none",
      "--restart=Never",
      "--dry-run=server",
    ]);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /violates PodSecurity "restricted:latest"/);
    t.diagnostic(refused.stderr.split(": ").slice(-1)[0]?.trim() ?? "");
  });

  test("every Sluice pod is admitted under restricted, as UID 1000 with a read-only root", async (t) => {
    const pods = await waitFor("the ReplicaSets to create every pod", async () => {
      const list = await kubectlJson([
        ...ns(),
        "get",
        "pods",
        "-l",
        `app.kubernetes.io/instance=${RELEASE}`,
      ]);
      return list.items.length === 5 && list.items;
    });
    for (const pod of pods) {
      const spec = pod.spec;
      assert.equal(spec.securityContext.runAsUser, 1000, pod.metadata.name);
      for (const container of spec.containers) {
        assert.equal(container.securityContext.readOnlyRootFilesystem, true, pod.metadata.name);
      }
    }
    const refusals = (await kubectlJson([...ns(), "get", "events"])).items.filter(
      (e: any) => e.reason === "FailedCreate",
    );
    assert.deepEqual(
      refusals.map((e: any) => e.message),
      [],
    );
    const components = pods
      .map((p: any) => p.metadata.labels["app.kubernetes.io/component"])
      .sort();
    t.diagnostic(`${pods.length} pods admitted: ${components.join(", ")}`);
  });
});

/**
 * The paths of `rendered` that `stored` lacks or holds otherwise: what the API server
 * dropped (a field its schema does not know) or changed. Defaults it adds are no difference.
 */
function differences(rendered: unknown, stored: unknown, path: string): string[] {
  if (rendered === null || typeof rendered !== "object") {
    return rendered === stored
      ? []
      : [`${path}: ${JSON.stringify(rendered)} stored as ${JSON.stringify(stored)}`];
  }
  if (stored === null || typeof stored !== "object") return [`${path}: missing`];
  return Object.entries(rendered).flatMap(([key, value]) =>
    differences(value, (stored as Record<string, unknown>)[key], `${path}.${key}`),
  );
}

// No ingress controller or Gateway API implementation runs on this cluster
// (docs/kubernetes.md), so nothing serves these routes: the API server judges them, the
// Gateway API's CRDs and their validation rules included.
describe("routes from outside the cluster", () => {
  const ROUTES = [
    "ingress.enabled=true",
    "ingress.className=nginx",
    "ingress.hosts[0]=uploads.example.com",
    "httpRoute.enabled=true",
    "httpRoute.parentRefs[0].name=public",
    "httpRoute.hostnames[0]=uploads.example.com",
  ];
  const routesOf = async (set: string[]) =>
    (await render({ release: RELEASE, namespace, set })).filter((o) =>
      ["Ingress", "HTTPRoute"].includes(o.kind),
    );

  test("helm upgrade with the Ingress and the HTTPRoute: the API server stores both as rendered", async (t) => {
    await helm([
      ...["upgrade", RELEASE, CHART, ...ns(), "--reuse-values"],
      ...ROUTES.flatMap((value) => ["--set", value]),
    ]);
    const seen = [];
    for (const route of await routesOf(ROUTES)) {
      const stored = await kubectlJson([...ns(), "get", route.kind, route.metadata.name]);
      assert.deepEqual(differences(route.spec, stored.spec, `${route.kind}.spec`), []);
      seen.push(`${route.kind} ${stored.metadata.name} (${stored.apiVersion})`);
    }
    assert.equal(seen.length, 2, seen.join(", "));
    t.diagnostic(seen.join(", "));
  });

  test("an HTTPRoute the Gateway API's rules forbid is refused by the API server, though its schema passes", async (t) => {
    const set = [
      ...ROUTES,
      "httpRoute.timeouts.request=10s",
      "httpRoute.timeouts.backendRequest=20s",
    ];
    const route = (await routesOf(set)).find((o) => o.kind === "HTTPRoute");
    assert.ok(route);
    // What npm test's check of rendered objects sees: nothing wrong.
    assert.deepEqual(validateObject(route), []);
    const refused = await kubectlResult(
      [...ns(), "create", "--dry-run=server", "-f", "-"],
      JSON.stringify({ ...route, metadata: { ...route.metadata, name: "forbidden" } }),
    );
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /backendRequest timeout cannot be longer than request timeout/);
    t.diagnostic(refused.stderr.trim());
  });
});

describe("RBAC", () => {
  test("the controller's ServiceAccount may do everything its Role grants", async (t) => {
    const role = await kubectlJson([...ns(), "get", "role", `${RELEASE}-controller`]);
    const granted: string[] = [];
    for (const rule of role.rules) {
      const group = rule.apiGroups[0] ? `.${rule.apiGroups[0]}` : "";
      const names: string[] = rule.resourceNames ?? [""];
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) {
          for (const name of names) {
            const target = `${resource}${group}${name ? `/${name}` : ""}`;
            assert.equal(
              await canI(serviceAccount("controller"), verb, target),
              "yes",
              `${verb} ${target}`,
            );
            granted.push(`${verb} ${target}`);
          }
        }
      }
    }
    // What the code calls is what the Role grants.
    const calls = KUBERNETES_PERMISSIONS.flatMap((p) => p.verbs.map((v) => `${v} ${p.resource}`));
    assert.deepEqual(granted.map((g) => g.replace(/[./].*$/, "")).sort(), [...calls].sort());
    t.diagnostic(`${granted.length} granted: ${granted.join(", ")}`);
  });

  test("the controller's ServiceAccount may do nothing beyond its Role", async (t) => {
    const refused = [
      ["list", "events"],
      ["delete", "events"],
      ["list", "leases.coordination.k8s.io"],
      ["delete", "leases.coordination.k8s.io"],
      ["watch", "leases.coordination.k8s.io"],
      ["get", "deployments.apps/sluice-api"],
      ["list", "deployments.apps"],
      ["update", "deployments.apps/sluice-worker"],
      ["patch", "deployments.apps/sluice-worker"],
      ["update", "deployments.apps/sluice-worker", "--subresource=scale"],
      ["get", "secrets"],
      ["get", "secrets/sluice-credentials"],
      ["list", "pods"],
      ["create", "pods"],
      ["get", "configmaps"],
      ["create", "events", "--namespace=default"],
      ["get", "leases.coordination.k8s.io", "--namespace=kube-system"],
      ["list", "namespaces"],
    ];
    for (const [verb, resource, extra] of refused) {
      const args = [
        ...ns(),
        "auth",
        "can-i",
        verb as string,
        resource as string,
        `--as=${serviceAccount("controller")}`,
      ];
      if (extra) args.push(extra);
      const answer = (await kubectlResult(args)).stdout.trim();
      assert.equal(answer, "no", `${verb} ${resource} ${extra ?? ""}`);
    }
    // The server's own list of what the account may do in the namespace: the Role, and the
    // self-reviews every authenticated user has.
    const review = await kubectlResult(
      [
        "create",
        "--validate=false",
        "-f",
        "-",
        "-o",
        "json",
        `--as=${serviceAccount("controller")}`,
      ],
      JSON.stringify({
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectRulesReview",
        spec: { namespace },
      }),
    );
    assert.equal(review.code, 0, review.stderr);
    const rules: ResourceRule[] = JSON.parse(review.stdout).status.resourceRules;
    const beyond = rules
      .filter((r) => !(r.resources ?? []).every((resource) => resource.startsWith("self")))
      .map(describeRule)
      .sort();
    assert.deepEqual(beyond, [
      "create /events",
      "get apps/deployments/sluice-worker",
      "get,create,update coordination.k8s.io/leases",
    ]);
    t.diagnostic(
      `${refused.length} requests refused; the server lists ${beyond.length} resource rules`,
    );
  });

  test("the api's and the worker's ServiceAccounts may do nothing", async (t) => {
    let refusals = 0;
    for (const program of ["api", "worker"]) {
      for (const [verb, resource] of [
        ["create", "events"],
        ["get", "leases.coordination.k8s.io"],
        ["get", "deployments.apps/sluice-worker"],
        ["get", "secrets/sluice-credentials"],
        ["list", "pods"],
      ]) {
        assert.equal(await canI(serviceAccount(program), verb as string, resource as string), "no");
        refusals++;
      }
    }
    t.diagnostic(`${refusals} requests refused`);
  });
});

describe("the controller program as its ServiceAccount", () => {
  let env: TestEnv;
  let api: InProcess | undefined;
  let controller: Program | undefined;
  let worker: Program | undefined;
  after(async () => {
    await worker?.stop();
    await controller?.stop();
    await api?.stop();
    await env?.cleanup();
  });

  test("reports an upload whose workers are gone as UploadStuck on the worker Deployment, and UploadRecovered once they are back", async (t) => {
    const { file } = await serviceAccountKubeconfig(namespace, `${RELEASE}-controller`);
    env = await testEnv({
      BATCH_SIZE: "100",
      STUCK_AFTER_SECONDS: "2",
      CONTROLLER_INTERVAL_SECONDS: "1",
      POD_NAMESPACE: namespace,
      POD_NAME: "sluice-controller-local",
      WORKER_DEPLOYMENT: `${RELEASE}-worker`,
      KUBECONFIG: file,
    });
    // No worker: the upload is published and then waits in the queue.
    api = await startInProcess(env, { worker: false });
    const accepted = await getJson(`${api.url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: sampleCsv(3_000).csv,
    });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const id = accepted.body.id as string;
    const view = async () => (await getJson(`${api?.url}/uploads/${id}`)).body;
    await waitFor(
      "every batch to be published",
      async () => (await view()).batches.published === 30,
    );

    const started = Date.now();
    controller = spawnProgram("controller", { ...env.env, LOG_LEVEL: "info" });
    const stuck = await uploadEvent(namespace, "UploadStuck", id, 180_000).catch((err: Error) => {
      throw new Error(
        `${err.message}; the controller printed:\n${controller?.lines.join("\n").slice(-3000)}`,
      );
    });
    const stuckAfter = seconds(started);
    await assertStuckForWorkers(namespace, stuck, "sluice-controller-local");

    const recoveringFrom = Date.now();
    worker = spawnProgram("worker", env.env);
    const recovered = await uploadEvent(namespace, "UploadRecovered", id, 180_000);
    await assertRecovered(namespace, recovered, id);
    t.diagnostic(
      `UploadStuck ${stuckAfter} after start, UploadRecovered ${seconds(recoveringFrom)} after a worker`,
    );
  });

  test("holds its Lease in its namespace", async (t) => {
    const lease = await kubectlJson([
      ...ns(),
      "get",
      "lease",
      `${env.config.namespace}-controller`,
    ]);
    assert.equal(lease.spec.holderIdentity, "sluice-controller-local");
    await controller?.stop();
    const released = await kubectlJson([
      ...ns(),
      "get",
      "lease",
      `${env.config.namespace}-controller`,
    ]);
    assert.equal(released.spec.holderIdentity ?? "", "", "given up on SIGTERM");
    t.diagnostic(
      `Lease ${lease.metadata.name} held by ${lease.spec.holderIdentity}, released on SIGTERM`,
    );
  });
});
