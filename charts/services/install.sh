#!/usr/bin/env bash
# Installs the services alongside Sluice from their upstream charts, for machines without
# helmfile. Usage: charts/services/install.sh [namespace]   (default: sluice)
set -euo pipefail
namespace=${1:-sluice}
here=$(cd "$(dirname "$0")" && pwd)

helm repo add localstack https://localstack.github.io/helm-charts --force-update >/dev/null
install() {
  helm upgrade --install "$1" "$2" --namespace "$namespace" --create-namespace \
    --values "$here/$1.yaml" --wait --timeout 10m
}
install rabbitmq oci://registry-1.docker.io/bitnamicharts/rabbitmq
install postgresql oci://registry-1.docker.io/bitnamicharts/postgresql
install redis oci://registry-1.docker.io/bitnamicharts/redis
install localstack localstack/localstack

echo "Services ready in namespace $namespace. Next:"
echo "  helm install sluice charts/sluice --namespace $namespace -f $here/sluice-values.yaml"
