// The Gateway API's standard channel in the cluster: its CRDs, with the validation rules
// they carry, from the module's config/crd. No implementation serves routes here: the API
// server judges the chart's HTTPRoute as a cluster with the Gateway API would.
import { gatewayApiCrds } from "./build.ts";
import { kubectl } from "./kubectl.ts";

const KINDS = ["gatewayclasses", "gateways", "httproutes", "referencegrants"];

/** Installs the CRDs and waits until the API server serves them. */
export function installGatewayApi(): void {
  // Server-side: the CRDs are too big for the last-applied annotation of a client-side apply.
  kubectl(["apply", "--server-side", "-k", gatewayApiCrds()]);
  kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    ...KINDS.map((kind) => `crd/${kind}.gateway.networking.k8s.io`),
  ]);
}
