// etcd, kube-apiserver, kube-controller-manager and kube-scheduler on the node address.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { ADMIN_KUBECONFIG, KUBERNETES_BIN, NETWORK, PKI_DIR, PORTS, STATE_DIR } from "./paths.ts";
import { startProcess, waitFor } from "./processes.ts";

export const API_SERVER = `https://${NETWORK.nodeIp}:${PORTS.apiserver}`;

const pki = (file: string) => join(PKI_DIR, file);

/** The kubeconfigs' context (and cluster) name; the Tiltfile allows Tilt to deploy to it. */
export const CONTEXT = "sluice-local";

/** A kubeconfig for one user, by client certificate or by bearer token. */
export function writeKubeconfig(
  file: string,
  user: Readonly<{ cert: string } | { token: string }>,
  namespace?: string,
): string {
  const credentials =
    "cert" in user
      ? { "client-certificate": pki(`${user.cert}.crt`), "client-key": pki(`${user.cert}.key`) }
      : { token: user.token };
  // JSON is YAML: kubectl, helm and client libraries all read it.
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: CONTEXT, cluster: { server: API_SERVER, "certificate-authority": pki("ca.crt") } },
    ],
    users: [{ name: "user", user: credentials }],
    contexts: [{ name: CONTEXT, context: { cluster: CONTEXT, user: "user", namespace } }],
    "current-context": CONTEXT,
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** GET over TLS; resolves with the status code (0 when nothing answers). */
function probe(url: string, client?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki("ca.crt")),
        ...(client
          ? { cert: readFileSync(pki(`${client}.crt`)), key: readFileSync(pki(`${client}.key`)) }
          : { rejectUnauthorized: false }),
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** The bridge that carries the node address, and later the pods. */
export function ensureBridge(): void {
  const ip = (...args: string[]) => spawnSync("ip", args, { encoding: "utf8" });
  if (ip("link", "show", NETWORK.bridge).status !== 0) {
    const made = ip("link", "add", NETWORK.bridge, "type", "bridge");
    if (made.status !== 0) throw new Error(`ip link add ${NETWORK.bridge}: ${made.stderr}`);
  }
  const prefix = NETWORK.podCidr.split("/")[1];
  if (!ip("-4", "addr", "show", NETWORK.bridge).stdout.includes(`${NETWORK.nodeIp}/`)) {
    const added = ip("addr", "add", `${NETWORK.nodeIp}/${prefix}`, "dev", NETWORK.bridge);
    if (added.status !== 0) throw new Error(`ip addr add ${NETWORK.nodeIp}: ${added.stderr}`);
  }
  ip("link", "set", NETWORK.bridge, "up");
}

export async function startEtcd(): Promise<void> {
  const client = `http://127.0.0.1:${PORTS.etcdClient}`;
  const peer = `http://127.0.0.1:${PORTS.etcdPeer}`;
  startProcess("etcd", "etcd", [
    "--name=sluice",
    `--data-dir=${join(STATE_DIR, "etcd")}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=sluice=${peer}`,
    "--initial-cluster-state=new",
  ]);
  await waitFor("etcd", async () => {
    const res = await fetch(`${client}/health`);
    return res.ok && ((await res.json()) as { health: string }).health === "true";
  });
}

export async function startApiServer(): Promise<void> {
  startProcess("kube-apiserver", join(KUBERNETES_BIN, "kube-apiserver"), [
    `--etcd-servers=http://127.0.0.1:${PORTS.etcdClient}`,
    `--bind-address=${NETWORK.nodeIp}`,
    `--advertise-address=${NETWORK.nodeIp}`,
    `--secure-port=${PORTS.apiserver}`,
    `--tls-cert-file=${pki("apiserver.crt")}`,
    `--tls-private-key-file=${pki("apiserver.key")}`,
    `--client-ca-file=${pki("ca.crt")}`,
    `--kubelet-client-certificate=${pki("apiserver-kubelet-client.crt")}`,
    `--kubelet-client-key=${pki("apiserver-kubelet-client.key")}`,
    `--kubelet-certificate-authority=${pki("ca.crt")}`,
    "--kubelet-preferred-address-types=InternalIP",
    "--authorization-mode=Node,RBAC",
    // PodSecurity is on by default; NodeRestriction keeps the kubelet to its own node.
    "--enable-admission-plugins=NodeRestriction",
    `--service-cluster-ip-range=${NETWORK.serviceCidr}`,
    `--service-account-issuer=https://kubernetes.default.svc.${NETWORK.clusterDomain}`,
    `--service-account-key-file=${pki("sa.pub")}`,
    `--service-account-signing-key-file=${pki("sa.key")}`,
    // Aggregated APIs (KEDA's external metrics) are reached through the front proxy.
    `--requestheader-client-ca-file=${pki("front-proxy-ca.crt")}`,
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-username-headers=X-Remote-User",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    `--proxy-client-cert-file=${pki("front-proxy-client.crt")}`,
    `--proxy-client-key-file=${pki("front-proxy-client.key")}`,
    "--enable-aggregator-routing=true",
    "--profiling=false",
  ]);
  await waitFor(
    "kube-apiserver",
    async () => (await probe(`${API_SERVER}/readyz`, "admin")) === 200,
  );
}

export async function startControllerManager(): Promise<void> {
  const kubeconfig = writeKubeconfig(join(STATE_DIR, "controller-manager.kubeconfig"), {
    cert: "controller-manager",
  });
  startProcess("kube-controller-manager", join(KUBERNETES_BIN, "kube-controller-manager"), [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${PORTS.controllerManager}`,
    "--leader-elect=false",
    "--cluster-name=sluice",
    `--service-cluster-ip-range=${NETWORK.serviceCidr}`,
    // Each controller acts under its own ServiceAccount, so RBAC applies to them too.
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${pki("sa.key")}`,
    `--root-ca-file=${pki("ca.crt")}`,
    `--cluster-signing-cert-file=${pki("ca.crt")}`,
    `--cluster-signing-key-file=${pki("ca.key")}`,
    "--profiling=false",
  ]);
  await waitFor(
    "kube-controller-manager",
    async () => (await probe(`https://127.0.0.1:${PORTS.controllerManager}/healthz`)) === 200,
  );
}

export async function startScheduler(): Promise<void> {
  const kubeconfig = writeKubeconfig(join(STATE_DIR, "scheduler.kubeconfig"), {
    cert: "scheduler",
  });
  startProcess("kube-scheduler", join(KUBERNETES_BIN, "kube-scheduler"), [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${PORTS.scheduler}`,
    "--leader-elect=false",
    "--profiling=false",
  ]);
  await waitFor(
    "kube-scheduler",
    async () => (await probe(`https://127.0.0.1:${PORTS.scheduler}/healthz`)) === 200,
  );
}

export function writeAdminKubeconfig(): string {
  return writeKubeconfig(ADMIN_KUBECONFIG, { cert: "admin" });
}
