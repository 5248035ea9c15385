// Stops everything cluster:up started and removes the cluster's state; the binaries stay
// in the cache. Usage: npm run cluster:down
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { NETWORK, PKI_DIR, RUN_DIR, STATE_DIR } from "./paths.ts";
import { stopProcess } from "./processes.ts";

/** In the reverse order of starting: nothing is left talking to a program already gone. */
const PROGRAMS = ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"];

export async function clusterDown(): Promise<void> {
  for (const name of PROGRAMS) {
    if (await stopProcess(name)) console.log(`stopped ${name}`);
  }
  spawnSync("ip", ["link", "del", NETWORK.bridge], { stdio: "ignore" });
  // The logs stay for a look after a failure; the next cluster:up starts afresh.
  for (const dir of [join(STATE_DIR, "etcd"), RUN_DIR, PKI_DIR]) {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await clusterDown();
  console.log("cluster down");
}
