// The chart and the code must agree: variable names, ports, probe paths, queue names,
// npm scripts. Each value here comes from the code or the contract, not from the chart.
// values.yaml's config and secret.env blocks and their schema are written from the code's
// list of variables (test/configuration.test.ts); here, what the templates make of them.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe as group, test } from "node:test";
import { parse } from "yaml";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { CONFIG_VARIABLES, loadConfig } from "../../src/core/config.ts";
import { NODE_OPTIONS } from "../../src/core/program/node-options.ts";
import {
  chartDir,
  container,
  deploymentSpec,
  find,
  type Rendered,
  render,
  root,
  valueSets,
} from "./chart.ts";

// Variables the chart sets that src/core/config.ts does not read, and why.
const OUTSIDE_CONFIGURATION: Record<string, string> = {
  DEBUG_HOST: "read by the debug npm scripts, not by the programs",
};

// The contract between the programs and their pods.
const PROGRAMS = {
  api: { port: 3000, debugPort: 9229, ready: "/readyz", script: "start:debug:api" },
  worker: { port: 9464, debugPort: 9230, ready: "/readyz", script: "start:debug:rmq-process" },
  // The controller takes no traffic: its pod is ready once alive, whatever its /readyz says.
  controller: { port: 9465, debugPort: 9231, ready: "/healthz", script: "start:debug:controller" },
} as const;

const packageScripts: Record<string, string> = JSON.parse(
  readFileSync(join(root, "package.json"), "utf8"),
).scripts;

/** Every variable a program's container gets, by name, with ConfigMap values resolved. */
function environment(objects: Rendered[], deployment: Rendered): Map<string, unknown> {
  const variables = new Map<string, unknown>();
  const c = container(deployment);
  for (const source of c.envFrom ?? []) {
    assert.ok(source.configMapRef, "variables come from ConfigMaps or single Secret keys only");
    const configMap = find(objects, "ConfigMap", source.configMapRef.name);
    for (const [name, value] of Object.entries(configMap.data as Record<string, string>)) {
      variables.set(name, value);
    }
  }
  for (const variable of c.env ?? [])
    variables.set(variable.name, variable.value ?? variable.valueFrom);
  return variables;
}

group("environment variables", () => {
  for (const { name, files } of valueSets) {
    test(`${name}: every variable the chart sets is one the code reads`, async () => {
      const objects = await render({ files });
      for (const deployment of objects.filter((o) => o.kind === "Deployment")) {
        // The parts of a URL the kubelet puts together (secret.urlFrom) are read by no program.
        const parts = new Set(
          (container(deployment).env ?? []).flatMap((e) =>
            [...(e.value ?? "").matchAll(/\$\(([A-Z0-9_]+)\)/g)].map((m) => m[1]),
          ),
        );
        for (const variable of environment(objects, deployment).keys()) {
          assert.ok(
            CONFIG_VARIABLES.includes(variable) ||
              variable in OUTSIDE_CONFIGURATION ||
              parts.has(variable),
            `${deployment.metadata.name} sets ${variable}, which src/core/config.ts does not read`,
          );
        }
      }
    });
  }

  test("every variable the code reads can be set through the chart", async () => {
    const values = parse(readFileSync(join(chartDir, "values.yaml"), "utf8"));
    const objects = await render();
    const settable = new Set([
      ...Object.keys(values.config),
      ...Object.keys(values.secret.env),
      ...objects
        .filter((o) => o.kind === "Deployment")
        .flatMap((d) => [...environment(objects, d).keys()]),
    ]);
    const missing = CONFIG_VARIABLES.filter((variable) => !settable.has(variable));
    assert.deepEqual(missing, [], "add them to values.yaml (config or secret.env) and the schema");
  });

  for (const name of ["values-dev.yaml", "ci/in-cluster-values.yaml", "ci/keda-values.yaml"]) {
    test(`${name}: the rendered settings and credentials pass the code's own parser`, async () => {
      const set = valueSets.find((s) => s.name === name);
      assert.ok(set);
      const objects = await render({ files: set.files });
      const env: Record<string, string> = {
        ...(find(objects, "ConfigMap", "sluice-config").data as Record<string, string>),
        ...(find(objects, "Secret", "sluice-credentials").stringData as Record<string, string>),
      };
      const config = loadConfig(env);
      assert.equal(config.ports.api, PROGRAMS.api.port);
      assert.equal(config.ports.worker, PROGRAMS.worker.port);
      assert.equal(config.ports.controller, PROGRAMS.controller.port);
    });
  }
});

group("ports and probes", () => {
  for (const [program, contract] of Object.entries(PROGRAMS)) {
    test(`${program}: listens, is probed and is served where the code says`, async () => {
      const objects = await render();
      const deployment = find(objects, "Deployment", `sluice-${program}`);
      const c = container(deployment);
      const http = c.ports?.find((p) => p.name === "http");
      assert.equal(http?.containerPort, contract.port);
      assert.deepEqual(c.livenessProbe?.httpGet, { path: "/healthz", port: "http" });
      assert.deepEqual(c.readinessProbe?.httpGet, { path: contract.ready, port: "http" });
      assert.equal(c.startupProbe?.httpGet.port, "http");

      const service = objects.find(
        (o) =>
          o.kind === "Service" && o.metadata.labels?.["app.kubernetes.io/component"] === program,
      );
      assert.ok(service, `a Service selects the ${program}`);
      const [port] = (service.spec as { ports: { targetPort: string }[] }).ports;
      assert.equal(port?.targetPort, "http");
    });

    test(`${program}: production runs the built program, debug mode the command of its debug script`, async () => {
      const production = container(find(await render(), "Deployment", `sluice-${program}`));
      assert.deepEqual(production.command, [
        "node",
        ...NODE_OPTIONS[program as keyof typeof NODE_OPTIONS].split(" "),
        `dist/${program}/main.js`,
      ]);
      assert.match(
        packageScripts[`start:${program}`] ?? "",
        new RegExp(`^node ${NODE_OPTIONS[program as keyof typeof NODE_OPTIONS]} `),
      );

      const dev = valueSets.find((s) => s.name === "values-dev.yaml")?.files ?? [];
      const objects = await render({ files: dev });
      const debug = container(find(objects, "Deployment", `sluice-${program}`));
      const script = packageScripts[contract.script] ?? "";
      assert.match(
        script,
        new RegExp(`--inspect=\\$\\{DEBUG_HOST:-127\\.0\\.0\\.1\\}:${contract.debugPort}\\b`),
      );
      // The script's own command, run by node as PID 1 (npm would skip the shutdown).
      assert.deepEqual(
        debug.command,
        script.replace(/\$\{DEBUG_HOST:-127\.0\.0\.1\}/, "0.0.0.0").split(" "),
        `debug mode runs the command of ${contract.script}`,
      );
      assert.deepEqual(
        debug.ports?.find((p) => p.name === "debug"),
        { name: "debug", containerPort: contract.debugPort, protocol: "TCP" },
      );
      assert.equal(debug.env?.find((e) => e.name === "DEBUG_HOST")?.value, "0.0.0.0");
      assert.equal(debug.livenessProbe, undefined, "a paused debugger must not get the pod killed");
    });
  }
});

group("queues", () => {
  for (const namespace of ["sluice", "acme-staging"]) {
    test(`KEDA watches the queue the worker consumes (namespace ${namespace})`, async () => {
      const objects = await render({
        set: ["worker.scaling=keda", `config.SLUICE_NAMESPACE=${namespace}`],
      });
      const scaled = find(objects, "ScaledObject", "sluice-worker");
      const [trigger] = (scaled.spec as { triggers: { metadata: { queueName: string } }[] })
        .triggers;
      assert.equal(trigger?.metadata.queueName, queueNames(namespace).batches);
      const configMap = find(objects, "ConfigMap", "sluice-config");
      assert.equal((configMap.data as Record<string, string>).SLUICE_NAMESPACE, namespace);
    });
  }
});

group("controller", () => {
  test("knows its namespace, its name and the worker Deployment it reports on", async () => {
    const objects = await render({ release: "prod" });
    const controller = find(objects, "Deployment", "prod-sluice-controller");
    const env = container(controller).env ?? [];
    const worker = find(objects, "Deployment", "prod-sluice-worker");
    assert.equal(env.find((e) => e.name === "WORKER_DEPLOYMENT")?.value, worker.metadata.name);
    assert.deepEqual(env.find((e) => e.name === "POD_NAMESPACE")?.valueFrom, {
      fieldRef: { fieldPath: "metadata.namespace" },
    });
    assert.deepEqual(env.find((e) => e.name === "POD_NAME")?.valueFrom, {
      fieldRef: { fieldPath: "metadata.name" },
    });
    const role = find(objects, "Role", "prod-sluice-controller");
    const rules = role.rules as { resources: string[]; resourceNames?: string[] }[];
    const deployments = rules.find((r) => r.resources.includes("deployments"));
    assert.deepEqual(deployments?.resourceNames, [worker.metadata.name]);
    assert.equal(deploymentSpec(controller).template.spec.automountServiceAccountToken, true);
  });
});
