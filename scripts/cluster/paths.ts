// Where the local cluster keeps its binaries (a cache shared by every checkout, keyed by
// version) and its state (certificates, etcd's data, logs, process ids).
import { join } from "node:path";
import { VERSIONS } from "./versions.ts";

export const CACHE_DIR = process.env.SLUICE_CLUSTER_CACHE ?? "/var/cache/sluice-cluster";
export const STATE_DIR = process.env.SLUICE_CLUSTER_DIR ?? "/var/lib/sluice-cluster";

export const KUBERNETES_BIN = join(CACHE_DIR, `kubernetes-${VERSIONS.kubernetes}`, "bin");
export const COREDNS_BIN = join(CACHE_DIR, `coredns-${VERSIONS.coredns}`, "bin", "coredns");
export const KEDA_BIN = join(CACHE_DIR, `keda-${VERSIONS.keda}`, "bin");
export const KUBE_ROUTER_BIN = join(
  CACHE_DIR,
  `kube-router-${VERSIONS.kubeRouter}`,
  "bin",
  "kube-router",
);
export const TILT_BIN = join(CACHE_DIR, `tilt-${VERSIONS.tilt}`, "bin", "tilt");
// Built from scripts/cluster/pause; the version names the source's revision.
export const PAUSE_BIN = join(CACHE_DIR, `pause-${VERSIONS.pause}`, "pause");
export const GO_ENV = {
  GOCACHE: join(CACHE_DIR, "go-build"),
  GOMODCACHE: join(CACHE_DIR, "go-mod"),
};

export const PKI_DIR = join(STATE_DIR, "pki");
export const LOG_DIR = join(STATE_DIR, "logs");
export const RUN_DIR = join(STATE_DIR, "run");
export const CONTAINERD_STATE = "/run/sluice-cluster/containerd";
export const CONTAINERD_SOCKET = join(CONTAINERD_STATE, "containerd.sock");
export const KUBELET_DIR = join(STATE_DIR, "kubelet");
export const CNI_CONF_DIR = join(STATE_DIR, "cni", "net.d");
export const REGISTRY_DIR = join(STATE_DIR, "registry");
export const ADMIN_KUBECONFIG = join(STATE_DIR, "admin.kubeconfig");

/**
 * The node's addresses. The node's own address sits on the pods' bridge, so pods reach the
 * API server and the cluster DNS directly through their gateway; Services get their own range.
 */
export const NETWORK = {
  bridge: "sluice0",
  nodeIp: "10.213.0.1",
  podCidr: "10.213.0.0/24",
  serviceCidr: "10.214.0.0/24",
  kubernetesServiceIp: "10.214.0.1",
  clusterDomain: "cluster.local",
} as const;

/** Ports on the node address, chosen away from the well-known ones other programs here use. */
export const PORTS = {
  etcdClient: 23790,
  etcdPeer: 23800,
  apiserver: 16443,
  controllerManager: 20257,
  scheduler: 20259,
  kubelet: 20250,
  kubeletHealthz: 20248,
  proxyHealthz: 20256,
  proxyMetrics: 20249,
  corednsHealth: 20280,
  corednsReady: 20281,
  kubeRouterHealth: 20244,
  /** The image registry, on 127.0.0.1: localhost:<port> for Docker, Tilt and containerd. */
  registry: 20500,
} as const;
