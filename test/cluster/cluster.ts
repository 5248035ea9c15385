// The local cluster as the cluster tests see it: kubectl and helm against the kubeconfig
// cluster:up wrote, a namespace per test file, and kubeconfigs for ServiceAccounts.
import { execFile, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { type AddressInfo, createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { KubeConfig } from "@kubernetes/client-node";
import { writeKubeconfig } from "../../scripts/cluster/control-plane.ts";
import { ctr, importImage } from "../../scripts/cluster/node.ts";
import { ADMIN_KUBECONFIG, NETWORK } from "../../scripts/cluster/paths.ts";
import { helmPath, kubectlPath } from "../../scripts/helm.ts";
import {
  CONTAINER_COVERAGE,
  COVERAGE_IN_CONTAINER,
  containerCoverageDir,
} from "../support/container-coverage.ts";

export { ADMIN_KUBECONFIG };

if (!existsSync(ADMIN_KUBECONFIG)) {
  throw new Error(`no cluster: ${ADMIN_KUBECONFIG} is missing; run npm run cluster:up first`);
}

const scratch = mkdtempSync(join(tmpdir(), "sluice-cluster-test-"));
const toolEnv = {
  ...process.env,
  KUBECONFIG: ADMIN_KUBECONFIG,
  HELM_CACHE_HOME: join(scratch, "helm-cache"),
  HELM_CONFIG_HOME: join(scratch, "helm-config"),
  HELM_DATA_HOME: join(scratch, "helm-data"),
};

export type Run = { stdout: string; stderr: string; code: number };

async function run(binary: string, args: readonly string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      args,
      { env: toolEnv, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** kubectl as the cluster's administrator; rejects unless it exits 0. */
export async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const result = await run(kubectlPath(), args, input);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  }
  return result.stdout;
}

/** kubectl whatever its exit: for answers that are refusals. */
export const kubectlResult = (args: readonly string[], input?: string) =>
  run(kubectlPath(), args, input);

export async function kubectlJson(args: readonly string[]): Promise<any> {
  return JSON.parse(await kubectl([...args, "-o", "json"]));
}

export async function helm(args: readonly string[]): Promise<string> {
  const result = await run(helmPath(), args);
  if (result.code !== 0) {
    throw new Error(`helm ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  }
  return result.stdout;
}

/** A namespace of its own for a test file, deleted (without waiting) when it is done. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  await kubectl(["create", "namespace", name]);
  return name;
}

export async function deleteNamespace(name: string): Promise<void> {
  await kubectl(["delete", "namespace", name, "--wait=false", "--ignore-not-found"]);
  if (!CONTAINER_COVERAGE) return;
  await kubectl([
    "delete",
    "persistentvolume",
    coverageVolume(name),
    "--wait=false",
    "--ignore-not-found",
  ]);
}

/**
 * What an administrator provides where no StorageClass makes volumes: a PersistentVolume
 * that is a directory of the node, reserved for one claim.
 */
export async function nodeVolume(
  name: string,
  dir: string,
  claim: Readonly<{ namespace: string; name: string }>,
  accessMode: "ReadWriteOnce" | "ReadWriteMany",
): Promise<void> {
  await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name },
      spec: {
        capacity: { storage: "5Gi" },
        accessModes: [accessMode],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "",
        hostPath: { path: dir, type: "Directory" },
        claimRef: claim,
      },
    }),
  );
}

const coverageVolume = (namespace: string) => `${namespace}-coverage`;
const COVERAGE_CLAIM = "sluice-coverage";

/**
 * Settings that make the chart's programs write their V8 coverage, when coverage is being
 * measured (test/support/container-coverage.ts), to a volume of the namespace whose
 * directory is on this machine; none otherwise.
 */
export async function coverageValues(namespace: string): Promise<string[]> {
  const dir = containerCoverageDir(namespace);
  if (!dir) return [];
  await nodeVolume(
    coverageVolume(namespace),
    dir,
    { namespace, name: COVERAGE_CLAIM },
    "ReadWriteMany",
  );
  await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: COVERAGE_CLAIM, namespace },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        volumeName: coverageVolume(namespace),
        resources: { requests: { storage: "1Gi" } },
      },
    }),
  );
  const program = {
    extraEnv: [
      // A folder per pod: every program is PID 1, and V8 names its files by PID and time.
      { name: "COVERAGE_POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "NODE_V8_COVERAGE", value: `${COVERAGE_IN_CONTAINER}/$(COVERAGE_POD)` },
    ],
    extraVolumes: [{ name: "coverage", persistentVolumeClaim: { claimName: COVERAGE_CLAIM } }],
    extraVolumeMounts: [{ name: "coverage", mountPath: COVERAGE_IN_CONTAINER }],
  };
  const file = join(scratch, `${namespace}-coverage-values.json`);
  writeFileSync(file, JSON.stringify({ api: program, worker: program, controller: program }));
  return ["--values", file];
}

/**
 * A kubeconfig that authenticates as a ServiceAccount with a token the API server issued
 * for it (TokenRequest), as a pod's projected token does, so RBAC judges every request.
 */
export async function serviceAccountKubeconfig(
  namespace: string,
  serviceAccount: string,
): Promise<{ file: string; kubeConfig: KubeConfig }> {
  const token = (
    await kubectl(["create", "token", serviceAccount, "--namespace", namespace, "--duration=1h"])
  ).trim();
  const file = writeKubeconfig(
    join(scratch, `${namespace}-${serviceAccount}.kubeconfig`),
    { token },
    namespace,
  );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(file);
  return { file, kubeConfig };
}

export type ContainerEnd = Readonly<{ container: string; exitCode: number; reason: string }>;

const KEPT_FOR_THE_TEST = "sluice.test/kept-until-read";

/**
 * Keeps the pods' objects after they are deleted until the returned release: the kubelet
 * reports how each container exited in the pod's status, and then deletes the pod.
 */
export async function keepPodsAfterDeletion(
  namespace: string,
  pods: readonly string[],
): Promise<() => Promise<void>> {
  const patch = (pod: string, change: object) =>
    kubectlResult([
      ...["--namespace", namespace, "patch", "pod", pod],
      ...["--type=merge", "-p", JSON.stringify(change)],
    ]);
  for (const pod of pods) {
    const kept = await patch(pod, { metadata: { finalizers: [KEPT_FOR_THE_TEST] } });
    if (kept.code !== 0) throw new Error(`kubectl patch pod ${pod}: ${kept.stderr}`);
  }
  // Released twice (at the end and after a failure), a pod already gone is no error.
  return async () => {
    for (const pod of pods) {
      const released = await patch(pod, { metadata: { finalizers: null } });
      if (released.code !== 0 && !released.stderr.includes("NotFound")) {
        throw new Error(`kubectl patch pod ${pod}: ${released.stderr}`);
      }
    }
  };
}

/** How the pod's containers exited, once every one of them has; undefined until then. */
export async function containerEnds(
  namespace: string,
  pod: string,
): Promise<ContainerEnd[] | undefined> {
  const statuses = (await kubectlJson(["--namespace", namespace, "get", "pod", pod])).status
    .containerStatuses;
  const ends = statuses.map((status: any) => ({
    container: status.name,
    exitCode: status.state.terminated?.exitCode,
    reason: status.state.terminated?.reason,
  }));
  return ends.every((end: any) => end.exitCode !== undefined) ? ends : undefined;
}

/** A kubeconfig file for the cluster's administrator pointed at another API server address. */
export function kubeconfigAt(server: string): KubeConfig {
  const file = join(scratch, `elsewhere-${randomUUID()}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "gone", cluster: { server, "insecure-skip-tls-verify": true } }],
      users: [{ name: "nobody", user: { token: "none" } }],
      contexts: [{ name: "gone", context: { cluster: "gone", user: "nobody" } }],
      "current-context": "gone",
    }),
  );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(file);
  return kubeConfig;
}

export const CHART = join(import.meta.dirname, "..", "..", "charts", "sluice");
export const RELEASE = "sluice";

/**
 * Installs charts/sluice as docs/kubernetes.md tells users: a namespace enforcing the
 * "restricted" Pod Security Standard, the credentials in a Secret of one's own, then
 * `helm install` naming it, with the given values files and settings.
 */
export async function installChart(
  namespace: string,
  credentials: Readonly<Record<string, string>>,
  set: readonly string[] = [],
  valuesFiles: readonly string[] = [],
): Promise<void> {
  await kubectl(["label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"]);
  await kubectl([
    "--namespace",
    namespace,
    "create",
    "secret",
    "generic",
    "sluice-credentials",
    ...Object.entries(credentials).map(([key, value]) => `--from-literal=${key}=${value}`),
  ]);
  await helm([
    "install",
    RELEASE,
    CHART,
    "--namespace",
    namespace,
    ...(await coverageValues(namespace)),
    ...valuesFiles.flatMap((file) => ["--values", file]),
    "--set",
    "secret.existingSecret=sluice-credentials",
    ...set.flatMap((value) => ["--set", value]),
  ]);
}

/**
 * A TCP forwarder on the node address to a service on this machine's loopback: how pods
 * reach the PostgreSQL, Redis, RabbitMQ and S3 that run outside the cluster. With `tls`
 * (a PEM key and certificate) it ends TLS first, as a managed service's endpoint would;
 * `sessions` counts the connections it forwarded, for TLS those whose handshake succeeded.
 */
export async function forwardFromNode(
  target: { host: string; port: number },
  tls?: { key: string; cert: string },
): Promise<{ port: number; sessions(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let sessions = 0;
  const forward = (client: Socket) => {
    sessions++;
    const upstream = createConnection(target);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  };
  const server = tls ? createTlsServer(tls, forward) : createServer(forward);
  server.listen(0, NETWORK.nodeIp);
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    sessions: () => sessions,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A Service of the namespace whose endpoint is a port on the node: the in-cluster name of a
 * service that runs outside the cluster.
 */
export async function serviceOutside(
  namespace: string,
  name: string,
  port: number,
  nodePort: number,
): Promise<void> {
  await kubectl(
    ["--namespace", namespace, "apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name },
          spec: { ports: [{ name: "tcp", port, targetPort: nodePort, protocol: "TCP" }] },
        },
        {
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSlice",
          metadata: { name, labels: { "kubernetes.io/service-name": name } },
          addressType: "IPv4",
          ports: [{ name: "tcp", port: nodePort, protocol: "TCP" }],
          endpoints: [{ addresses: [NETWORK.nodeIp], conditions: { ready: true } }],
        },
      ],
    }),
  );
}

/** The image id (its config's digest) under that name in the cluster's containerd, if any. */
function clusterImageId(reference: string): string | undefined {
  const name = `docker.io/library/${reference}`;
  const line = ctr(["images", "ls"])
    .split("\n")
    .find((l) => l.split(/\s+/)[0] === name);
  const manifest = line?.split(/\s+/)[2];
  if (!manifest) return undefined;
  return JSON.parse(ctr(["content", "get", manifest])).config?.digest;
}

/**
 * The Sluice image in the cluster's containerd, from the local Docker engine when it is
 * missing there or is another build than Docker's (an image:build since the last import).
 */
export async function ensureSluiceImage(reference: string): Promise<string | undefined> {
  const inspected = spawnSync("docker", ["image", "inspect", "-f", "{{.Id}}", reference], {
    encoding: "utf8",
  });
  const dockerId = inspected.status === 0 ? inspected.stdout.trim() : undefined;
  const clusterId = clusterImageId(reference);
  if (clusterId && (dockerId === undefined || clusterId === dockerId)) return undefined;
  if (dockerId === undefined) return `no image ${reference}: build it with npm run image:build`;
  const archive = join(scratch, "sluice-image.tar");
  const save = spawnSync("docker", ["save", reference, "-o", archive], { encoding: "utf8" });
  if (save.status !== 0) throw new Error(`docker save ${reference}: ${save.stderr}`);
  importImage(archive);
  return undefined;
}
