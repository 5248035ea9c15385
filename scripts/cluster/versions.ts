// Every version the local cluster uses, in one place. Kubernetes, CoreDNS, KEDA,
// kube-router and Tilt are built from their Go modules; the CRDs of the Gateway API and of
// two operators come from theirs; the rest comes from Debian's packages.
export const VERSIONS = {
  kubernetes: "1.35.4",
  // The staging modules (k8s.io/api, client-go, ...) released with that Kubernetes.
  kubernetesStaging: "0.35.4",
  coredns: "1.14.7",
  // The operator and its metrics API server (github.com/kedacore/keda/v2), run as pods.
  keda: "2.21.0",
  // The Gateway API's standard channel CRDs (sigs.k8s.io/gateway-api, config/crd), which
  // the API server judges the chart's HTTPRoute by.
  gatewayApi: "1.6.3",
  // The CRDs of the operators charts/services installs, from their modules, which the API
  // server judges that folder's objects by: CloudNativePG's (the operator of its chart's
  // 0.29 line) and the RabbitMQ Cluster Operator's (install.sh's RABBITMQ_OPERATOR_VERSION).
  cloudnativePg: "1.30.0",
  rabbitmqClusterOperator: "2.18.0",
  // Its network policy controller alone (github.com/cloudnativelabs/kube-router/v2).
  kubeRouter: "2.1.0",
  // The sandbox image made from scripts/cluster/pause.
  pause: "1",
  // Tilt's command line (github.com/tilt-dev/tilt), for the Tiltfile's check. Its helm()
  // does not know Helm 4 before 0.36, so the Tiltfile runs `helm template` itself.
  tilt: "0.34.0",
  // The recipe of the services' images made from Debian's packages
  // (scripts/cluster/services-images.ts); a change to it takes a new number.
  servicesImages: "1",
} as const;

/** Debian packages the cluster runs, as bookworm ships them. */
export const DEBIAN_PACKAGES = [
  "etcd-server",
  "containerd",
  "runc",
  "containernetworking-plugins",
  "iptables",
  "conntrack",
  "openssl",
  // kube-router keeps the pods selected by NetworkPolicies in ip sets.
  "ipset",
  // The registry on localhost that Tilt pushes its images to and the node pulls from.
  "docker-registry",
] as const;

/** The Kubernetes programs built from k8s.io/kubernetes/cmd/<name>. */
export const KUBERNETES_PROGRAMS = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
  "kube-proxy",
] as const;
