// How the controller finds a Kubernetes API server, and everything it may ask of it.
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
} from "@kubernetes/client-node";

/**
 * Every request the controller makes. The chart's Role grants exactly these; a test
 * records what the controller sends and compares it with this list.
 */
export const KUBERNETES_PERMISSIONS = [
  { apiGroup: "", resource: "events", verbs: ["create"] },
  { apiGroup: "coordination.k8s.io", resource: "leases", verbs: ["get", "create", "update"] },
  { apiGroup: "apps", resource: "deployments", verbs: ["get"] },
] as const;

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The cluster to report to: KUBECONFIG, ~/.kube/config, or the pod's service account. The
 * client's own default falls back to localhost:8080, which would only turn "no cluster"
 * into a stream of connection errors; here no cluster is undefined.
 */
export function findKubeConfig(
  env: Readonly<Record<string, string | undefined>>,
  home: string,
): KubeConfig | undefined {
  const kubeConfig = new KubeConfig();
  const files = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  if (files.length === 0 && existsSync(join(home, ".kube", "config")))
    files.push(join(home, ".kube", "config"));
  if (files.length > 0) {
    // As kubectl does: the first file's context wins, the others add to it.
    kubeConfig.loadFromFile(files[0] as string);
    for (const file of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kubeConfig.mergeConfig(more, true);
    }
    return kubeConfig;
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(SERVICE_ACCOUNT, "token"))) {
    kubeConfig.loadFromCluster();
    return kubeConfig;
  }
  return undefined;
}

/** The namespace of the kubeconfig's current context, which in a pod is the pod's own. */
export function contextNamespace(kubeConfig: KubeConfig): string | undefined {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
}

export type KubeClients = Readonly<{
  core: CoreV1Api;
  coordination: CoordinationV1Api;
  apps: AppsV1Api;
}>;

export function kubeClients(kubeConfig: KubeConfig): KubeClients {
  return {
    core: kubeConfig.makeApiClient(CoreV1Api),
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    apps: kubeConfig.makeApiClient(AppsV1Api),
  };
}

/** The HTTP status of a failed call, or undefined when the server never answered. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}
