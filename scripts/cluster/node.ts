// The node: containerd with runc, the pods' network (CNI bridge, host-local, portmap,
// loopback), the kubelet, kube-proxy in iptables mode and CoreDNS for cluster DNS.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kubectlPath } from "../helm.ts";
import { CONTEXT, writeKubeconfig } from "./control-plane.ts";
import { writeImageArchive } from "./image-archive.ts";
import {
  ADMIN_KUBECONFIG,
  CNI_CONF_DIR,
  CONTAINERD_SOCKET,
  CONTAINERD_STATE,
  COREDNS_BIN,
  KUBELET_DIR,
  KUBERNETES_BIN,
  NETWORK,
  PAUSE_BIN,
  PKI_DIR,
  PORTS,
  STATE_DIR,
} from "./paths.ts";
import { NODE_NAME } from "./pki.ts";
import { startProcess, stopProcess, waitFor } from "./processes.ts";
import { REGISTRY_HOSTS_DIR } from "./registry.ts";
import { VERSIONS } from "./versions.ts";

export const SANDBOX_IMAGE = `sluice.local/pause:${VERSIONS.pause}`;
/** runc's state for this containerd alone, apart from any other containerd on the machine. */
const RUNC_ROOT = "/run/sluice-cluster/runc";
const pki = (file: string) => join(PKI_DIR, file);

function run(command: string, args: readonly string[], input?: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", input });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

export const ctr = (args: readonly string[]) =>
  run("ctr", ["--address", CONTAINERD_SOCKET, "--namespace", "k8s.io", ...args]);

async function get(url: string): Promise<boolean> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.ok;
}

export async function startContainerd(): Promise<void> {
  const root = join(STATE_DIR, "containerd");
  mkdirSync(root, { recursive: true });
  mkdirSync(CNI_CONF_DIR, { recursive: true });
  const config = join(STATE_DIR, "containerd.toml");
  writeFileSync(
    config,
    `version = 2
root = "${root}"
state = "${CONTAINERD_STATE}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${CONTAINERD_SOCKET}"

[ttrpc]
  address = "${CONTAINERD_SOCKET}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  enable_selinux = false
  # Without CAP_SYS_RESOURCE (as in this machine's sandbox) no process may lower its
  # oom_score_adj, and the kubelet asks -998 for every pod sandbox: keep it at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${RUNC_ROOT}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${CNI_CONF_DIR}"
  # The local registry (registry.ts), reached over HTTP.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${REGISTRY_HOSTS_DIR}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(root, "opt")}"
`,
  );
  startProcess("containerd", "containerd", ["--config", config]);
  await waitFor("containerd", async () => {
    ctr(["version"]);
    return true;
  });
}

/** Imports an image archive into the cluster's containerd, where the kubelet finds it. */
export function importImage(archive: string): void {
  ctr(["images", "import", "--all-platforms", archive]);
}

export function importSandboxImage(): void {
  const archive = join(STATE_DIR, "pause.tar");
  writeImageArchive(
    archive,
    SANDBOX_IMAGE,
    [{ name: "pause", data: readFileSync(PAUSE_BIN), mode: 0o755 }],
    ["/pause"],
  );
  importImage(archive);
}

export function writeCniConfig(): void {
  mkdirSync(CNI_CONF_DIR, { recursive: true });
  const [subnet] = NETWORK.podCidr.split("/");
  const rangeStart = (subnet as string).replace(/\.0$/, ".10");
  writeFileSync(
    join(CNI_CONF_DIR, "10-sluice.conflist"),
    JSON.stringify(
      {
        cniVersion: "0.4.0",
        name: "sluice",
        plugins: [
          {
            type: "bridge",
            bridge: NETWORK.bridge,
            isGateway: true,
            ipMasq: true,
            hairpinMode: true,
            ipam: {
              type: "host-local",
              dataDir: join(STATE_DIR, "cni", "ipam"),
              ranges: [[{ subnet: NETWORK.podCidr, rangeStart, gateway: NETWORK.nodeIp }]],
              routes: [{ dst: "0.0.0.0/0" }],
            },
          },
          { type: "portmap", capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ),
  );
}

export async function startKubelet(): Promise<void> {
  mkdirSync(KUBELET_DIR, { recursive: true });
  const kubeconfig = writeKubeconfig(join(STATE_DIR, "kubelet.kubeconfig"), {
    cert: "kubelet-client",
  });
  const config = join(STATE_DIR, "kubelet.json");
  writeFileSync(
    config,
    JSON.stringify(
      {
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        address: NETWORK.nodeIp,
        port: PORTS.kubelet,
        readOnlyPort: 0,
        healthzBindAddress: "127.0.0.1",
        healthzPort: PORTS.kubeletHealthz,
        tlsCertFile: pki("kubelet.crt"),
        tlsPrivateKeyFile: pki("kubelet.key"),
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: true },
          x509: { clientCAFile: pki("ca.crt") },
        },
        authorization: { mode: "Webhook" },
        containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
        cgroupDriver: "cgroupfs",
        // This machine mounts cgroup v1, which the kubelet no longer accepts by default.
        failCgroupV1: false,
        failSwapOn: false,
        clusterDNS: [NETWORK.nodeIp],
        clusterDomain: NETWORK.clusterDomain,
        resolvConf: "",
        // A shared development machine: evict only when it is really out of room.
        evictionHard: {
          "memory.available": "100Mi",
          "nodefs.available": "2%",
          "imagefs.available": "2%",
          "nodefs.inodesFree": "2%",
        },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        maxPods: 40,
        serializeImagePulls: false,
      },
      null,
      2,
    ),
  );
  startProcess("kubelet", join(KUBERNETES_BIN, "kubelet"), [
    `--config=${config}`,
    `--kubeconfig=${kubeconfig}`,
    `--root-dir=${KUBELET_DIR}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${NETWORK.nodeIp}`,
  ]);
  await waitFor("kubelet", async () => {
    const node = spawnSync(
      kubectlPath(),
      ["--kubeconfig", ADMIN_KUBECONFIG, "get", "node", NODE_NAME, "-o", "json"],
      { encoding: "utf8" },
    );
    if (node.status !== 0) return false;
    const conditions: Array<{ type: string; status: string }> = JSON.parse(node.stdout).status
      .conditions;
    return conditions.some((c) => c.type === "Ready" && c.status === "True");
  });
}

export async function startKubeProxy(): Promise<void> {
  const kubeconfig = writeKubeconfig(join(STATE_DIR, "kube-proxy.kubeconfig"), {
    cert: "kube-proxy",
  });
  const config = join(STATE_DIR, "kube-proxy.json");
  writeFileSync(
    config,
    JSON.stringify({
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      mode: "iptables",
      clientConnection: { kubeconfig },
      hostnameOverride: NODE_NAME,
      clusterCIDR: NETWORK.podCidr,
      healthzBindAddress: `127.0.0.1:${PORTS.proxyHealthz}`,
      metricsBindAddress: `127.0.0.1:${PORTS.proxyMetrics}`,
      nodePortAddresses: [`${NETWORK.nodeIp}/32`],
      // Leave the machine's conntrack table size alone.
      conntrack: { maxPerCore: 0 },
    }),
  );
  startProcess("kube-proxy", join(KUBERNETES_BIN, "kube-proxy"), [`--config=${config}`]);
  await waitFor("kube-proxy", () => get(`http://127.0.0.1:${PORTS.proxyHealthz}/healthz`));
}

/** CoreDNS on the node address, answering for cluster.local from the API server. */
export async function startCoreDns(): Promise<void> {
  run(
    kubectlPath(),
    ["--kubeconfig", ADMIN_KUBECONFIG, "apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: "sluice:coredns" },
          rules: [
            {
              apiGroups: [""],
              resources: ["services", "pods", "namespaces"],
              verbs: ["list", "watch"],
            },
            {
              apiGroups: ["discovery.k8s.io"],
              resources: ["endpointslices"],
              verbs: ["list", "watch"],
            },
          ],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: "sluice:coredns" },
          roleRef: {
            apiGroup: "rbac.authorization.k8s.io",
            kind: "ClusterRole",
            name: "sluice:coredns",
          },
          subjects: [
            { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "system:sluice-coredns" },
          ],
        },
      ],
    }),
  );
  const kubeconfig = writeKubeconfig(join(STATE_DIR, "coredns.kubeconfig"), { cert: "coredns" });
  const corefile = join(STATE_DIR, "Corefile");
  writeFileSync(
    corefile,
    `.:53 {
    bind ${NETWORK.nodeIp}
    errors
    health 127.0.0.1:${PORTS.corednsHealth}
    ready 127.0.0.1:${PORTS.corednsReady}
    kubernetes ${NETWORK.clusterDomain} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig} ${CONTEXT}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`,
  );
  startProcess("coredns", COREDNS_BIN, ["-conf", corefile]);
  await waitFor("coredns", () => get(`http://127.0.0.1:${PORTS.corednsReady}/ready`));
}

/** The bridge plugin's masquerade chains of pods that were never torn down through CNI. */
function removeMasqueradeRules(): void {
  const rules = spawnSync("iptables", ["-t", "nat", "-S", "POSTROUTING"], { encoding: "utf8" });
  for (const rule of rules.stdout.split("\n")) {
    const chain = / -j (CNI-[0-9a-f]+)/.exec(rule)?.[1];
    if (!chain || !rule.includes('name: \\"sluice\\"')) continue;
    const spec = rule.replace(/^-A POSTROUTING /, "");
    spawnSync("sh", ["-c", `iptables -t nat -D POSTROUTING ${spec}`]);
    spawnSync("iptables", ["-t", "nat", "-F", chain]);
    spawnSync("iptables", ["-t", "nat", "-X", chain]);
  }
}

/** The chains the kubelet makes at start (kube-proxy --cleanup removes its own). */
function removeKubeletChains(): void {
  for (const tool of ["iptables", "ip6tables"]) {
    const run = (...args: string[]) => spawnSync(tool, args, { stdio: "ignore" });
    for (const chain of ["INPUT", "OUTPUT"]) run("-D", chain, "-j", "KUBE-FIREWALL");
    run("-F", "KUBE-FIREWALL");
    run("-X", "KUBE-FIREWALL");
    for (const table of ["filter", "nat", "mangle"]) run("-t", table, "-X", "KUBE-KUBELET-CANARY");
    run("-t", "mangle", "-X", "KUBE-IPTABLES-HINT");
  }
}

/**
 * Stops the pods' containers, then the node's programs. The kubelet gets a last chance
 * to tear the pods down itself (network included); runc removes whatever it left.
 */
export async function stopNode(): Promise<void> {
  for (const name of ["coredns", "kubelet"]) {
    if (await stopProcess(name)) console.log(`stopped ${name}`);
  }
  if (existsSync(join(RUNC_ROOT, "k8s.io"))) {
    const ids = spawnSync("runc", ["--root", join(RUNC_ROOT, "k8s.io"), "list", "-q"], {
      encoding: "utf8",
    })
      .stdout.split("\n")
      .filter(Boolean);
    for (const id of ids) {
      spawnSync("runc", ["--root", join(RUNC_ROOT, "k8s.io"), "delete", "--force", id]);
    }
  }
  if (await stopProcess("containerd")) console.log("stopped containerd");
  // The shims of this containerd outlive it; they are the processes that name its socket.
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmdline.includes("containerd-shim") && cmdline.includes(CONTAINERD_SOCKET)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
  if (await stopProcess("kube-proxy")) {
    console.log("stopped kube-proxy");
    spawnSync(join(KUBERNETES_BIN, "kube-proxy"), ["--cleanup"], { stdio: "ignore" });
  }
  removeMasqueradeRules();
  removeKubeletChains();
  // The pods' network namespaces: those holding an address of the pods' range.
  const prefix = NETWORK.podCidr.split(".").slice(0, 3).join(".");
  for (const netns of spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n")) {
    const name = netns.split(" ")[0];
    if (!name?.startsWith("cni-")) continue;
    const addresses = spawnSync("ip", ["netns", "exec", name, "ip", "-4", "-o", "addr"], {
      encoding: "utf8",
    }).stdout;
    if (addresses.includes(` ${prefix}.`)) spawnSync("ip", ["netns", "delete", name]);
  }
  // Volumes the kubelet mounted and the runtime's mounts, deepest first.
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((path) => path.startsWith(`${STATE_DIR}/`) || path.startsWith("/run/sluice-cluster/"))
    .sort((a, b) => b.length - a.length);
  for (const path of mounts) spawnSync("umount", ["-l", path]);
  rmSync("/run/sluice-cluster", { recursive: true, force: true });
}
