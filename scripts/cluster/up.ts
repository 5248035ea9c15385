// Starts the local single-node cluster and prints where its kubeconfig is.
// Usage: npm run cluster:up   (npm run cluster:down stops everything it started)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import {
  ensureCoreDns,
  ensureKeda,
  ensureKubeRouter,
  ensureKubernetes,
  ensurePause,
} from "./build.ts";
import {
  ensureBridge,
  startApiServer,
  startControllerManager,
  startEtcd,
  startScheduler,
  writeAdminKubeconfig,
} from "./control-plane.ts";
import { clusterDown } from "./down.ts";
import { installGatewayApi } from "./gateway-api.ts";
import { startKeda } from "./keda.ts";
import { startKubeRouter } from "./network-policy.ts";
import {
  importSandboxImage,
  startContainerd,
  startCoreDns,
  startKubelet,
  startKubeProxy,
  writeCniConfig,
} from "./node.ts";
import { ADMIN_KUBECONFIG } from "./paths.ts";
import { ensurePki } from "./pki.ts";
import { runningPid } from "./processes.ts";
import { publishRegistry, REGISTRY_HOST, startRegistry, writeRegistryHosts } from "./registry.ts";
import { DEBIAN_PACKAGES } from "./versions.ts";

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

if (runningPid("kube-apiserver") !== undefined) {
  console.log(`the cluster is already up; KUBECONFIG=${ADMIN_KUBECONFIG}`);
  process.exit(0);
}

// What Debian's packages bring; a missing one fails here, named, rather than halfway up.
const missing = [
  "etcd",
  "containerd",
  "runc",
  "iptables",
  "ipset",
  "conntrack",
  "openssl",
  "docker-registry",
  "go",
].filter(
  (command) => spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status !== 0,
);
if (missing.length > 0 || !existsSync("/usr/lib/cni/bridge")) {
  console.error(
    `missing ${missing.length > 0 ? missing : ["CNI plugins"].join(", ")}: apt-get install ${DEBIAN_PACKAGES.join(" ")}, and Go`,
  );
  process.exit(1);
}

try {
  ensureKubernetes();
  ensureCoreDns();
  ensurePause();
  ensureKeda();
  ensureKubeRouter();
  console.log(`binaries ready (${elapsed()})`);
  ensurePki();
  ensureBridge();
  await startEtcd();
  await startApiServer();
  writeAdminKubeconfig();
  console.log(`api server ready (${elapsed()})`);
  await startControllerManager();
  await startScheduler();
  console.log(`control plane ready (${elapsed()})`);
  installGatewayApi();
  writeCniConfig();
  await startRegistry();
  writeRegistryHosts();
  await startContainerd();
  importSandboxImage();
  await startKubelet();
  await startKubeProxy();
  await startKubeRouter();
  await startCoreDns();
  publishRegistry();
  console.log(`node ready, images from ${REGISTRY_HOST} (${elapsed()})`);
  await startKeda();
  console.log(`KEDA ready (${elapsed()})`);
} catch (err) {
  console.error((err as Error).message);
  await clusterDown();
  process.exit(1);
}
console.log(`cluster up in ${elapsed()}`);
console.log(`KUBECONFIG=${ADMIN_KUBECONFIG}`);
