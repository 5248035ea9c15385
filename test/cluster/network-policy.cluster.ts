// The chart's NetworkPolicies enforced by the cluster's policy controller (kube-router):
// with egress restricted to what each program uses an upload still lands and the api cannot
// reach the API server, and the api admits only the pods its policy names.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NETWORK, PORTS } from "../../scripts/cluster/paths.ts";
import { waitFor } from "../support/stack.ts";
import { kubectl, kubectlJson } from "./cluster.ts";
import {
  apiUrl,
  IMAGE,
  installSluice,
  missingImage,
  namespaceWithServices,
  type Outside,
  PROGRAMS,
  podsOf,
  rolledOut,
  uploadLands,
} from "./sluice-release.ts";

const ROWS = 20_000;
const CLIENT_LABEL = "sluice.example/api-client";

const skip = await missingImage();

describe("NetworkPolicy", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  namespaceWithServices("sluice-netpol", (made) => {
    ({ namespace, outside } = made);
  });

  test("with egress restricted to what each program uses, an upload lands", async (t) => {
    const { nodePorts } = outside;
    const used = [nodePorts.postgresql, nodePorts.redis, nodePorts.rabbitmq, nodePorts.s3];
    // The Services' endpoints are forwarders on the node: a policy sees their ports.
    const port = (service: string, value: number) => [
      `networkPolicy.egressTo.${service}.ports[0].port=${value}`,
      `networkPolicy.egressTo.${service}.ports[0].protocol=TCP`,
    ];
    await installSluice(namespace, outside, {
      set: [
        "networkPolicy.enabled=true",
        "networkPolicy.restrictEgress=true",
        `networkPolicy.apiFrom[0].podSelector.matchLabels.${CLIENT_LABEL.replaceAll(".", "\\.")}=yes`,
        ...port("postgresql", nodePorts.postgresql),
        ...port("redis", nodePorts.redis),
        ...port("rabbitmq", nodePorts.rabbitmq),
        ...port("s3", nodePorts.s3),
        ...port("kubernetesApi", PORTS.apiserver),
      ],
    });
    for (const program of PROGRAMS) await rolledOut(namespace, program);
    const policies = await kubectlJson(["--namespace", namespace, "get", "networkpolicies"]);
    assert.equal(policies.items.length, 3);
    const url = await apiUrl(namespace);
    // From the node, which kube-router always lets reach its pods (the kubelet's probes).
    await uploadLands(url, outside, ROWS);
    t.diagnostic(
      `${policies.items.length} policies, egress to ports ${used.join(", ")} and ${PORTS.apiserver}; ${ROWS} rows landed via ${url}`,
    );
  });

  test("egress: the api may not reach the API server, which the controller may", async (t) => {
    // A TCP connection to the API server on the node: what the kubernetesApi rule admits.
    const script = `const s=require("net").connect({host:${JSON.stringify(NETWORK.nodeIp)},port:${PORTS.apiserver}});s.setTimeout(10000,()=>{console.log("timeout");s.destroy()});s.on("connect",()=>{console.log("connected");s.destroy()});s.on("error",e=>console.log(e.code))`;
    const from = async (program: "api" | "controller") => {
      const [pod] = await podsOf(namespace, program);
      const out = await kubectl([
        "--namespace",
        namespace,
        "exec",
        pod.metadata.name,
        "--",
        "node",
        "-e",
        script,
      ]);
      return out.trim();
    };
    const controller = await from("controller");
    const api = await from("api");
    assert.equal(controller, "connected", "the controller's policy admits the API server");
    assert.match(api, /^(ECONNREFUSED|EHOSTUNREACH|timeout)$/, "the api's policy does not");
    t.diagnostic(
      `${NETWORK.nodeIp}:${PORTS.apiserver} from the controller: ${controller}, from the api: ${api}`,
    );
  });

  /**
   * A pod of the namespace, under the restricted standard, that asks the api's /metrics and
   * prints the status, or the last error once its deadline passes; returns what it printed.
   */
  async function probeFrom(name: string, labels: Record<string, string>): Promise<string> {
    const url = `${await apiUrl(namespace)}/metrics`;
    // Retried until the deadline: the policy controller sees a new pod a moment after it starts.
    const script = `const end=Date.now()+20000;(async()=>{for(;;){try{const r=await fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(3000)});console.log(r.status);return}catch(e){if(Date.now()>end){console.log(e.cause?.code??e.name);return}await new Promise(r=>setTimeout(r,500))}}})()`;
    await kubectl(
      ["--namespace", namespace, "apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, labels },
        spec: {
          restartPolicy: "Never",
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: "probe",
              image: `${IMAGE.repository}:${IMAGE.tag}`,
              imagePullPolicy: "Never",
              command: ["node", "-e", script],
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
                readOnlyRootFilesystem: true,
              },
            },
          ],
        },
      }),
    );
    await waitFor(
      `pod ${name} to finish`,
      async () => {
        const pod = await kubectlJson(["--namespace", namespace, "get", "pod", name]);
        return ["Succeeded", "Failed"].includes(pod.status.phase);
      },
      120_000,
    );
    return (await kubectl(["--namespace", namespace, "logs", name])).trim();
  }

  test("the api's metrics port admits a pod with the allowed label and no other", async (t) => {
    const allowed = await probeFrom("with-label", { [CLIENT_LABEL]: "yes" });
    const refused = await probeFrom("without-label", { app: "curious" });
    assert.equal(allowed, "200", "the pod the policy names reaches /metrics");
    // kube-router rejects what no policy admits (ICMP port unreachable).
    assert.match(
      refused,
      /^(ECONNREFUSED|EHOSTUNREACH|TimeoutError)$/,
      "any other pod is turned away",
    );
    t.diagnostic(
      `labelled pod: ${allowed}, unlabelled pod: ${refused} (policies on ${NETWORK.bridge} by kube-router)`,
    );
  });
});
