// NetworkPolicy enforcement: kube-router's network policy controller alone (no routing, no
// service proxy: the bridge and kube-proxy do those), as a process on the node like the
// kubelet. It filters each pod's traffic in iptables chains of its own, with the pods that
// policies select kept in ip sets.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { kubectlPath } from "../helm.ts";
import { writeKubeconfig } from "./control-plane.ts";
import { ADMIN_KUBECONFIG, KUBE_ROUTER_BIN, NETWORK, PORTS, STATE_DIR } from "./paths.ts";
import { NODE_NAME } from "./pki.ts";
import { startProcess, stopProcess, waitFor } from "./processes.ts";

export const KUBE_ROUTER_USER = "system:sluice-kube-router";

export async function startKubeRouter(): Promise<void> {
  // What the upstream firewall DaemonSet's ClusterRole grants, less what routing needs.
  const apply = spawnSync(kubectlPath(), ["--kubeconfig", ADMIN_KUBECONFIG, "apply", "-f", "-"], {
    encoding: "utf8",
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: "sluice:kube-router" },
          rules: [
            {
              apiGroups: [""],
              resources: ["namespaces", "pods", "services", "nodes", "endpoints"],
              verbs: ["get", "list", "watch"],
            },
            {
              apiGroups: ["networking.k8s.io"],
              resources: ["networkpolicies"],
              verbs: ["get", "list", "watch"],
            },
            {
              apiGroups: ["discovery.k8s.io"],
              resources: ["endpointslices"],
              verbs: ["get", "list", "watch"],
            },
          ],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: "sluice:kube-router" },
          roleRef: {
            apiGroup: "rbac.authorization.k8s.io",
            kind: "ClusterRole",
            name: "sluice:kube-router",
          },
          subjects: [
            { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: KUBE_ROUTER_USER },
          ],
        },
      ],
    }),
  });
  if (apply.status !== 0) throw new Error(`kube-router's RBAC: ${apply.stderr}`);
  const kubeconfig = writeKubeconfig(join(STATE_DIR, "kube-router.kubeconfig"), {
    cert: "kube-router",
  });
  startProcess("kube-router", KUBE_ROUTER_BIN, [
    `--kubeconfig=${kubeconfig}`,
    `--hostname-override=${NODE_NAME}`,
    "--run-firewall=true",
    "--run-router=false",
    "--run-service-proxy=false",
    // The bridge plugin wires the pods; kube-router leaves CNI alone.
    "--enable-cni=false",
    `--service-cluster-ip-range=${NETWORK.serviceCidr}`,
    `--health-port=${PORTS.kubeRouterHealth}`,
    "--metrics-port=0",
  ]);
  await waitFor("kube-router", async () => {
    const res = await fetch(`http://127.0.0.1:${PORTS.kubeRouterHealth}/healthz`);
    await res.arrayBuffer();
    return res.ok;
  });
}

/** kube-router's chains in the filter table: its own (KUBE-ROUTER-*) and each pod's and policy's. */
const OWN_CHAIN = /^(KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)|KUBE-POD-FW-\S+|KUBE-NWPLCY-\S+)$/;
/** Its ip sets: the sources and destinations of each policy. */
const OWN_SET = /^KUBE-(SRC|DST)-/;

/** Stops kube-router and removes its chains and ip sets, which it leaves on exit. */
export async function stopKubeRouter(): Promise<boolean> {
  const stopped = await stopProcess("kube-router");
  const rules = spawnSync("iptables", ["-t", "filter", "-S"], { encoding: "utf8" }).stdout;
  const chains = rules
    .split("\n")
    .map((line) => /^-N (\S+)$/.exec(line)?.[1])
    .filter((chain): chain is string => chain !== undefined && OWN_CHAIN.test(chain));
  // The jumps into them from the built-in chains, then the chains themselves.
  for (const rule of rules.split("\n")) {
    const match = /^-A (INPUT|FORWARD|OUTPUT) (.* -j (\S+).*)$/.exec(rule);
    if (match && OWN_CHAIN.test(match[3] as string)) {
      spawnSync("sh", ["-c", `iptables -t filter -D ${match[1]} ${match[2]}`]);
    }
  }
  for (const chain of chains) spawnSync("iptables", ["-t", "filter", "-F", chain]);
  for (const chain of chains) spawnSync("iptables", ["-t", "filter", "-X", chain]);
  const sets = spawnSync("ipset", ["list", "-n"], { encoding: "utf8" });
  for (const set of (sets.stdout ?? "").split("\n").filter((name) => OWN_SET.test(name))) {
    spawnSync("ipset", ["destroy", set]);
  }
  return stopped;
}
