// KEDA in the cluster as its own release installs it: the CRDs, RBAC, operator, metrics API
// server and the external metrics APIService from the module's config/minimal (all of
// config/default but the admission webhooks), with images made here from the binaries built
// from source, since nothing can be pulled.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { kedaConfigDir } from "./build.ts";
import { writeImageArchive } from "./image-archive.ts";
import { kubectl } from "./kubectl.ts";
import { importImage } from "./node.ts";
import { KEDA_BIN, STATE_DIR } from "./paths.ts";
import { VERSIONS } from "./versions.ts";

export const KEDA_NAMESPACE = "keda";
const EXTERNAL_METRICS = "v1beta1.external.metrics.k8s.io";

/** KEDA's two images: the names its manifests give, with the version built. */
const IMAGES = [
  { program: "keda", upstream: "ghcr.io/kedacore/keda:main", local: "sluice.local/keda" },
  {
    program: "keda-adapter",
    upstream: "ghcr.io/kedacore/keda-metrics-apiserver:main",
    local: "sluice.local/keda-metrics-apiserver",
  },
] as const;

/** Installs KEDA and waits until the API server serves external metrics through it. */
export async function startKeda(): Promise<void> {
  let manifests = kubectl(["kustomize", join(kedaConfigDir(), "minimal")]);
  for (const image of IMAGES) {
    const reference = `${image.local}:${VERSIONS.keda}`;
    const archive = join(STATE_DIR, `${image.program}.tar`);
    writeImageArchive(
      archive,
      reference,
      [{ name: image.program, data: readFileSync(join(KEDA_BIN, image.program)), mode: 0o755 }],
      [`/${image.program}`],
    );
    importImage(archive);
    if (!manifests.includes(image.upstream)) {
      throw new Error(`KEDA's manifests no longer name ${image.upstream}`);
    }
    manifests = manifests.replaceAll(image.upstream, reference);
  }
  // The images are in containerd already; Always would try the registry.
  manifests = manifests.replaceAll("imagePullPolicy: Always", "imagePullPolicy: Never");
  // Server-side: the CRDs are too big for the last-applied annotation of a client-side apply.
  kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], manifests);
  for (const deployment of ["keda-operator", "keda-metrics-apiserver"]) {
    kubectl([
      "--namespace",
      KEDA_NAMESPACE,
      "rollout",
      "status",
      `deployment/${deployment}`,
      "--timeout=300s",
    ]);
  }
  // The operator writes the serving certificate and the APIService's CA bundle; until then
  // the aggregator cannot reach the metrics server.
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const service = JSON.parse(kubectl(["get", "apiservice", EXTERNAL_METRICS, "-o", "json"]));
    const conditions: Array<{ type: string; status: string; message?: string }> =
      service.status?.conditions ?? [];
    if (conditions.some((c) => c.type === "Available" && c.status === "True")) return;
    await sleep(1000);
  }
  throw new Error(
    `APIService ${EXTERNAL_METRICS} not Available: ${kubectl(["get", "apiservice", EXTERNAL_METRICS, "-o", "yaml"])}`,
  );
}
