// One Prometheus registry per program, with the process metrics every program exports.
import { collectDefaultMetrics, Registry } from "prom-client";

export function createRegistry(program: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ program });
  collectDefaultMetrics({ register: registry, prefix: "sluice_" });
  return registry;
}
