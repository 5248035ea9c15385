// Starts the local single-node cluster and prints where its kubeconfig is.
// Usage: npm run cluster:up   (npm run cluster:down stops everything it started)
import { ensureKubernetes } from "./build.ts";
import {
  ensureBridge,
  startApiServer,
  startControllerManager,
  startEtcd,
  startScheduler,
  writeAdminKubeconfig,
} from "./control-plane.ts";
import { clusterDown } from "./down.ts";
import { ADMIN_KUBECONFIG } from "./paths.ts";
import { ensurePki } from "./pki.ts";
import { runningPid } from "./processes.ts";

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

if (runningPid("kube-apiserver") !== undefined) {
  console.log(`the cluster is already up; KUBECONFIG=${ADMIN_KUBECONFIG}`);
  process.exit(0);
}

try {
  ensureKubernetes();
  console.log(`binaries ready (${elapsed()})`);
  ensurePki();
  ensureBridge();
  await startEtcd();
  await startApiServer();
  writeAdminKubeconfig();
  console.log(`api server ready (${elapsed()})`);
  await startControllerManager();
  await startScheduler();
} catch (err) {
  console.error((err as Error).message);
  await clusterDown();
  process.exit(1);
}
console.log(`cluster up in ${elapsed()}`);
console.log(`KUBECONFIG=${ADMIN_KUBECONFIG}`);
