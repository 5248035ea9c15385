// The plain manifests in k8s/: valid objects, and the services the Tilt values point at.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { chartDir, parseYamlStream, type Rendered, root } from "./chart.ts";
import { validateObject } from "./strict-schema.ts";

const dir = join(root, "k8s");
const files = readdirSync(dir).filter((file) => file.endsWith(".yaml"));
const objects = files.flatMap(
  (file) => parseYamlStream(readFileSync(join(dir, file), "utf8")) as Rendered[],
);
const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
function named(kinds: RegExp, name: string): Rendered {
  const found = objects.find((o) => kinds.test(o.kind) && o.metadata.name === name);
  if (!found) throw new Error(`k8s/ has no ${kinds.source} named ${name}`);
  return found;
}

test("every object in k8s/ matches its Kubernetes schema, with no unknown field", () => {
  assert.ok(files.length >= 5);
  assert.deepEqual(objects.flatMap(validateObject), []);
});

test("each Service selects the pods of a workload and targets a port they name", () => {
  const workloads = [...byKind("Deployment"), ...byKind("StatefulSet")];
  for (const service of byKind("Service")) {
    const spec = service.spec as {
      selector: Record<string, string>;
      ports: { targetPort: string }[];
    };
    const workload = workloads.find((w) => {
      const labels = (w.spec as { template: { metadata: { labels: Record<string, string> } } })
        .template.metadata.labels;
      return Object.entries(spec.selector).every(([k, v]) => labels[k] === v);
    });
    assert.ok(workload, `nothing behind Service ${service.metadata.name}`);
    const containers = (
      workload.spec as { template: { spec: { containers: { ports: { name: string }[] }[] } } }
    ).template.spec.containers;
    const named = containers.flatMap((c) => c.ports.map((p) => p.name));
    for (const port of spec.ports) assert.ok(named.includes(port.targetPort), port.targetPort);
  }
});

test("RabbitMQ serves AMQP and its management UI", () => {
  const rabbitmq = named(/^Service$/, "rabbitmq");
  const ports = (rabbitmq.spec as { ports: { port: number }[] }).ports.map((p) => p.port);
  assert.ok(ports.includes(5672));
  assert.ok(ports.includes(15672));
});

test("the Tilt values reach these services with these credentials", () => {
  const values = parse(readFileSync(join(chartDir, "values-dev.yaml"), "utf8"));
  const credentials = byKind("Secret").find((s) => s.metadata.name === "services-credentials")
    ?.stringData as Record<string, string>;
  const services = new Map(
    byKind("Service").map((s) => [
      s.metadata.name,
      (s.spec as { ports: { port: number }[] }).ports.map((p) => p.port),
    ]),
  );
  const reaches = (url: string) => {
    const parsed = new URL(url);
    const ports = services.get(parsed.hostname);
    assert.ok(ports?.includes(Number(parsed.port)), `${url} reaches no Service in k8s/`);
    return parsed;
  };
  const database = reaches(values.secret.env.DATABASE_URL);
  assert.equal(database.username, credentials["postgresql-username"]);
  assert.equal(database.password, credentials["postgresql-password"]);
  assert.equal(database.pathname, `/${credentials["postgresql-database"]}`);
  const broker = reaches(values.secret.env.RABBITMQ_URL);
  assert.equal(broker.username, credentials["rabbitmq-username"]);
  assert.equal(broker.password, credentials["rabbitmq-password"]);
  reaches(values.secret.env.REDIS_URL);
  reaches(values.config.AWS_ENDPOINT);

  const bucketScript = byKind("ConfigMap").find((c) => c.metadata.name === "localstack-init");
  const chartValues = parse(readFileSync(join(chartDir, "values.yaml"), "utf8"));
  assert.match(
    JSON.stringify(bucketScript?.data),
    new RegExp(`s3 mb s3://${chartValues.config.S3_BUCKET}\\b`),
  );
});

test("PostgreSQL, Redis and RabbitMQ run unprivileged", () => {
  for (const name of ["postgresql", "redis", "rabbitmq"]) {
    const workload = named(/^(Deployment|StatefulSet)$/, name);
    type Pod = {
      securityContext: Record<string, unknown>;
      containers: { securityContext: Record<string, unknown> }[];
    };
    const pod = (workload.spec as { template: { spec: Pod } }).template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true, name);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
    for (const c of pod.containers) {
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, name);
      assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    }
  }
});
