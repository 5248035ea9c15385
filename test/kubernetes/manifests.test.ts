// The plain manifests in k8s/: valid objects, and the services the Tilt values point at.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { chartDir, parseYamlStream, type Rendered, root } from "./chart.ts";
import { pinnedImage } from "./pinned.ts";
import { validateObject } from "./strict-schema.ts";

const dir = join(root, "k8s");
// kustomization.yaml lists the others for `kubectl apply -k`; it is no Kubernetes object.
const files = readdirSync(dir).filter(
  (file) => file.endsWith(".yaml") && file !== "kustomization.yaml",
);
const objects = files.flatMap(
  (file) => parseYamlStream(readFileSync(join(dir, file), "utf8")) as Rendered[],
);
const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
type Container = {
  lifecycle?: { postStart?: unknown };
  readinessProbe?: { httpGet?: { path: string } };
};
const container = (workload: Rendered) =>
  (workload.spec as { template: { spec: { containers: Container[] } } }).template.spec
    .containers[0] as Container;
function named(kinds: RegExp, name: string): Rendered {
  const found = objects.find((o) => kinds.test(o.kind) && o.metadata.name === name);
  if (!found) throw new Error(`k8s/ has no ${kinds.source} named ${name}`);
  return found;
}

test("every object in k8s/ matches its Kubernetes schema, with no unknown field", () => {
  assert.ok(files.length >= 5);
  assert.deepEqual(objects.flatMap(validateObject), []);
});

test("every image in k8s/ is pinned to a release", () => {
  const images = [...byKind("Deployment"), ...byKind("StatefulSet")].flatMap((workload) => {
    const pod = (
      workload.spec as {
        template: {
          spec: { containers: { image: string }[]; initContainers?: { image: string }[] };
        };
      }
    ).template.spec;
    return [...pod.containers, ...(pod.initContainers ?? [])].map((c) => c.image);
  });
  assert.ok(images.length >= 4);
  assert.deepEqual(
    images.filter((image) => !pinnedImage(image)),
    [],
  );
});

test("kustomization.yaml applies every manifest and names every image, for overrides", () => {
  const kustomization = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8"));
  assert.deepEqual([...kustomization.resources].sort(), [...files].sort());
  const images = [...byKind("Deployment"), ...byKind("StatefulSet")].flatMap((workload) =>
    (
      workload.spec as { template: { spec: { containers: { image: string }[] } } }
    ).template.spec.containers.map((c) => c.image),
  );
  const listed = (kustomization.images as { name: string; newTag: string }[]).map(
    (i) => `${i.name}:${i.newTag}`,
  );
  assert.deepEqual([...listed].sort(), [...new Set(images)].sort());
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
    const port = Number(parsed.port || (parsed.protocol === "http:" ? 80 : Number.NaN));
    assert.ok(ports?.includes(port), `${url} reaches no Service in k8s/`);
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

  // The S3 server creates the chart's bucket when it starts, and is ready once it answers.
  const bucket = parse(readFileSync(join(chartDir, "values.yaml"), "utf8")).config.S3_BUCKET;
  const s3 = container(named(/^Deployment$/, "s3"));
  assert.match(
    JSON.stringify(s3.lifecycle?.postStart),
    new RegExp(`http://127\\.0\\.0\\.1:5000/${bucket}\\b`),
  );
  assert.equal(s3.readinessProbe?.httpGet?.path, `/${bucket}`);
});

test("every service runs unprivileged", () => {
  for (const name of ["postgresql", "redis", "rabbitmq", "s3"]) {
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
