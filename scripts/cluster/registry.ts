// An image registry on this machine: Debian's docker-registry, plain HTTP on 127.0.0.1. Docker
// pushes to it (it trusts any registry on localhost without TLS), the node's containerd pulls
// from it over HTTP (its hosts.toml below), and the cluster names it in the
// local-registry-hosting ConfigMap of kube-public (KEP-1755), where Tilt looks for where to
// push the images it builds.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kubectlPath } from "../helm.ts";
import { ADMIN_KUBECONFIG, PORTS, REGISTRY_DIR } from "./paths.ts";
import { startProcess, stopProcess, waitFor } from "./processes.ts";

/** The registry's name for Docker, Tilt and containerd alike: all three run on this machine. */
export const REGISTRY_HOST = `localhost:${PORTS.registry}`;
/** containerd's registry configuration directory (config_path), one hosts.toml per registry. */
export const REGISTRY_HOSTS_DIR = join(REGISTRY_DIR, "hosts");

/** containerd reaches the registry over HTTP; written before containerd starts. */
export function writeRegistryHosts(): void {
  const dir = join(REGISTRY_HOSTS_DIR, REGISTRY_HOST);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "hosts.toml"),
    `server = "http://${REGISTRY_HOST}"

[host."http://${REGISTRY_HOST}"]
  capabilities = ["pull", "resolve"]
`,
  );
}

export async function startRegistry(): Promise<void> {
  const data = join(REGISTRY_DIR, "data");
  mkdirSync(data, { recursive: true });
  const config = join(REGISTRY_DIR, "config.yml");
  // YAML, written as JSON. Images pushed here last as long as the cluster.
  writeFileSync(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: "warn", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: data }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${PORTS.registry}` },
    }),
  );
  startProcess("registry", "docker-registry", ["serve", config]);
  await waitFor("registry", async () => {
    const res = await fetch(`http://127.0.0.1:${PORTS.registry}/v2/`);
    await res.arrayBuffer();
    return res.ok;
  });
}

/** The KEP-1755 ConfigMap naming the registry; needs the API server. */
export function publishRegistry(): void {
  const hosting = [
    `host: "${REGISTRY_HOST}"`,
    `hostFromContainerRuntime: "${REGISTRY_HOST}"`,
    `help: "https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry"`,
    "",
  ].join("\n");
  const apply = spawnSync(kubectlPath(), ["--kubeconfig", ADMIN_KUBECONFIG, "apply", "-f", "-"], {
    encoding: "utf8",
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "local-registry-hosting", namespace: "kube-public" },
      data: { "localRegistryHosting.v1": hosting },
    }),
  });
  if (apply.status !== 0) {
    throw new Error(`publishing the registry failed: ${apply.stderr || apply.stdout}`);
  }
}

export const stopRegistry = () => stopProcess("registry");
