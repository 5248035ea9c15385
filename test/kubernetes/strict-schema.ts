// Validates Kubernetes objects against the API schemas shipped by kubernetes-models (core
// APIs, KEDA, prometheus-operator, Gateway API), and also rejects fields the schema does not
// know, which those validators let through.
import * as gatewayModels from "@kubernetes-models/gateway-api";
import * as kedaModels from "@kubernetes-models/keda";
import * as prometheusModels from "@kubernetes-models/prometheus-operator";
import * as coreModels from "kubernetes-models";

type Model = { apiVersion: string; kind: string; prototype: { validate(): void } };
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type KubeObject = { apiVersion: string; kind: string; [key: string]: Json };

const models = new Map<string, Model>();
function collect(namespace: object): void {
  for (const value of Object.values(namespace)) {
    if (typeof value === "function" && typeof value.apiVersion === "string" && value.kind) {
      models.set(`${value.apiVersion}/${value.kind}`, value as Model);
    } else if (value && typeof value === "object") {
      collect(value);
    }
  }
}
collect(coreModels);
collect(kedaModels);
collect(prometheusModels);
collect(gatewayModels);

/** Returns every problem found in one object; an empty list means it is valid. */
export function validateObject(object: KubeObject): string[] {
  const name = `${object.kind}/${(object.metadata as { name?: string } | undefined)?.name}`;
  const model = models.get(`${object.apiVersion}/${object.kind}`);
  if (!model) return [`${name}: no schema for ${object.apiVersion} ${object.kind}`];

  // The generated validators read each property the schema defines and enumerate the keys
  // of maps (labels, data, ...). Watching them through a Proxy tells which fields the schema
  // knows; any other key of an object whose keys were never enumerated is unknown.
  const reads = new Map<object, { keys: Set<PropertyKey>; enumerated: boolean }>();
  const watch = (value: unknown): unknown => {
    if (value === null || typeof value !== "object") return value;
    const target = value as object;
    const record = reads.get(target) ?? { keys: new Set(), enumerated: false };
    reads.set(target, record);
    return new Proxy(target, {
      get(obj, key, receiver) {
        record.keys.add(key);
        return watch(Reflect.get(obj, key, receiver));
      },
      has(obj, key) {
        record.keys.add(key);
        return Reflect.has(obj, key);
      },
      ownKeys(obj) {
        record.enumerated = true;
        return Reflect.ownKeys(obj);
      },
    });
  };

  const problems: string[] = [];
  try {
    model.prototype.validate.call(watch(object));
  } catch (error) {
    problems.push(`${name}: ${(error as Error).message}`);
  }
  const walk = (value: unknown, path: string): void => {
    if (value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) walk(item, `${path}[${index}]`);
      return;
    }
    const record = reads.get(value);
    for (const [key, child] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      if (record && !record.enumerated && !record.keys.has(key)) {
        problems.push(`${name}: unknown field ${at}`);
      }
      walk(child, at);
    }
  };
  walk(object, "");
  return problems;
}
