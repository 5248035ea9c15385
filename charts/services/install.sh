#!/usr/bin/env bash
# Installs the services alongside Sluice from maintained sources, every version pinned:
# CloudNativePG and the RabbitMQ Cluster Operator (cluster-wide, once per cluster), then in
# the namespace a PostgreSQL Cluster, a RabbitmqCluster, Valkey from its chart and S3 for
# development (k8s/s3.yaml). Usage: charts/services/install.sh [namespace]   (default: sluice)
set -euo pipefail
namespace=${1:-sluice}
here=$(cd "$(dirname "$0")" && pwd)

CNPG_CHART_VERSION=0.29.1
RABBITMQ_OPERATOR_VERSION=2.18.0
VALKEY_CHART_VERSION=1.0.0
VALKEY_RELEASE=valkey

# The operators, each in its own namespace; their CRDs come with them.
helm repo add cnpg https://cloudnative-pg.github.io/charts --force-update >/dev/null
helm repo add valkey https://valkey.io/valkey-helm/ --force-update >/dev/null
helm upgrade --install cnpg cnpg/cloudnative-pg --version "$CNPG_CHART_VERSION" \
  --namespace cnpg-system --create-namespace --wait --timeout 10m
kubectl apply -f "https://github.com/rabbitmq/cluster-operator/releases/download/v${RABBITMQ_OPERATOR_VERSION}/cluster-operator.yml"
kubectl --namespace rabbitmq-system rollout status deployment/rabbitmq-cluster-operator --timeout 10m

# The services, in Sluice's namespace.
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
kubectl --namespace "$namespace" apply -f "$here/postgresql.yaml" -f "$here/rabbitmq.yaml" \
  -f "$here/../../k8s/s3.yaml"
helm upgrade --install "$VALKEY_RELEASE" valkey/valkey --version "$VALKEY_CHART_VERSION" \
  --namespace "$namespace" --values "$here/valkey.yaml" --wait --timeout 10m
kubectl --namespace "$namespace" wait cluster/sluice-db --for=condition=Ready --timeout 10m
kubectl --namespace "$namespace" wait rabbitmqcluster/sluice-mq --for=condition=AllReplicasReady --timeout 10m
kubectl --namespace "$namespace" rollout status deployment/s3 --timeout 10m

echo "Services ready in namespace $namespace. Next:"
echo "  helm install sluice charts/sluice --namespace $namespace -f $here/sluice-values.yaml \\"
echo "    --set image.repository=<your registry>/sluice --set image.tag=<version>"
