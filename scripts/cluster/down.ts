// Stops everything cluster:up started and removes the cluster's state; the binaries stay
// in the cache. Usage: npm run cluster:down
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stopKubeRouter } from "./network-policy.ts";
import { stopNode } from "./node.ts";
import { NETWORK, STATE_DIR } from "./paths.ts";
import { stopProcess } from "./processes.ts";
import { stopRegistry } from "./registry.ts";

/** In the reverse order of starting: nothing is left talking to a program already gone. */
const PROGRAMS = ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"];

export async function clusterDown(): Promise<void> {
  if (await stopKubeRouter()) console.log("stopped kube-router");
  await stopNode();
  if (await stopRegistry()) console.log("stopped registry");
  for (const name of PROGRAMS) {
    if (await stopProcess(name)) console.log(`stopped ${name}`);
  }
  spawnSync("ip", ["link", "del", NETWORK.bridge], { stdio: "ignore" });
  // The logs stay for a look after a failure; the next cluster:up starts afresh.
  // Only what cluster:up and the checks (volumes/) write, should STATE_DIR point somewhere
  // shared.
  const made =
    /^(etcd|containerd|cni|kubelet|run|pki|volumes|registry|Corefile|pause\.tar|.+\.(kubeconfig|json|toml))$/;
  if (existsSync(STATE_DIR)) {
    for (const entry of readdirSync(STATE_DIR)) {
      if (made.test(entry)) rmSync(join(STATE_DIR, entry), { recursive: true, force: true });
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await clusterDown();
  console.log("cluster down");
}
