import assert from "node:assert/strict";
import { test } from "node:test";
import { type KubeObject, validateObject } from "./strict-schema.ts";

function deployment(): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "demo", labels: { app: "demo" } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "demo" } },
      template: {
        metadata: { labels: { app: "demo" } },
        spec: { containers: [{ name: "demo", image: "demo:1", env: [{ name: "A", value: "1" }] }] },
      },
    },
  };
}

test("a well-formed Deployment passes", () => {
  assert.deepEqual(validateObject(deployment()), []);
});

test("a misspelt field fails, wherever it is", () => {
  const misspeltReplicas = deployment() as { spec: Record<string, unknown> } & KubeObject;
  misspeltReplicas.spec.replica = misspeltReplicas.spec.replicas;
  delete misspeltReplicas.spec.replicas;
  assert.deepEqual(validateObject(misspeltReplicas), [
    "Deployment/demo: unknown field spec.replica",
  ]);

  const misspeltImage = deployment();
  const template = misspeltImage.spec as { template: { spec: { containers: object[] } } };
  template.template.spec.containers = [{ name: "demo", imagee: "demo:1" }];
  assert.deepEqual(validateObject(misspeltImage), [
    "Deployment/demo: unknown field spec.template.spec.containers[0].imagee",
  ]);
});

test("keys of free-form maps are not mistaken for unknown fields", () => {
  const configMap: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "settings", annotations: { "example.com/any": "x" } },
    data: { ANY_KEY: "1", another: "2" },
  };
  assert.deepEqual(validateObject(configMap), []);
});

test("a wrong type fails", () => {
  const wrong = deployment();
  (wrong.spec as Record<string, unknown>).replicas = "two";
  const problems = validateObject(wrong);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? "", /replicas must be integer/);
});

test("custom resources are checked against their own schemas", () => {
  const scaledObject: KubeObject = {
    apiVersion: "keda.sh/v1alpha1",
    kind: "ScaledObject",
    metadata: { name: "worker" },
    spec: {
      scaleTargetRef: { name: "worker" },
      triggers: [{ type: "rabbitmq", metadata: { queueName: "q", mode: "QueueLength" } }],
    },
  };
  assert.deepEqual(validateObject(scaledObject), []);
  (scaledObject.spec as Record<string, unknown>).maxReplicas = 3;
  assert.deepEqual(validateObject(scaledObject), [
    "ScaledObject/worker: unknown field spec.maxReplicas",
  ]);
});

test("a kind without a schema fails rather than passing unchecked", () => {
  const problems = validateObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: {} });
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? "", /no schema/);
});
