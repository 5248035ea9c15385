// The chart's Grafana dashboards and Prometheus rules, read the way the tests need them:
// every PromQL query they hold, and the metric names each query reads.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadYaml } from "@kubernetes/client-node";

// Not from stack.ts: checking these files needs none of the programs.
export const ROOT = new URL("../../", import.meta.url).pathname;

export const RULES_DIR = join(ROOT, "charts", "sluice", "rules");
export const DASHBOARDS_DIR = join(ROOT, "charts", "sluice", "dashboards");

export type Rule = {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};

export type Query = { source: string; expr: string };

export function ruleFiles(): string[] {
  return readdirSync(RULES_DIR)
    .filter((name) => name.endsWith(".yaml"))
    .map((name) => join(RULES_DIR, name));
}

export function rules(): Rule[] {
  return ruleFiles().flatMap((file) =>
    loadYaml<{ groups: Array<{ rules: Rule[] }> }>(readFileSync(file, "utf8")).groups.flatMap(
      (group) => group.rules,
    ),
  );
}

export function dashboards(): Array<{ file: string; json: Record<string, unknown> }> {
  return readdirSync(DASHBOARDS_DIR)
    .filter((name) => name.endsWith(".json"))
    .map((name) => ({
      file: name,
      json: JSON.parse(readFileSync(join(DASHBOARDS_DIR, name), "utf8")),
    }));
}

/** Every panel target's expr and every templating query, wherever it is nested. */
export function dashboardQueries(): Query[] {
  const found: Query[] = [];
  const walk = (node: unknown, source: string) => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item, source);
      return;
    }
    if (typeof node !== "object" || node === null) return;
    const object = node as Record<string, unknown>;
    const title = typeof object.title === "string" ? `${source} / ${object.title}` : source;
    if (typeof object.expr === "string") found.push({ source: title, expr: object.expr });
    // Variables: label_values(<selector>, <label>) reads the selector's metric.
    if (object.type === "query" && typeof object.definition === "string") {
      const selector = /^label_values\((.*),\s*[a-zA-Z_]\w*\)$/.exec(object.definition)?.[1];
      found.push({
        source: `${source} / variable ${String(object.name)}`,
        expr: selector ?? object.definition,
      });
    }
    for (const [key, value] of Object.entries(object)) {
      if (key !== "expr" && key !== "definition") walk(value, title);
    }
  };
  for (const { file, json } of dashboards()) walk(json, file);
  return found;
}

export function ruleQueries(): Query[] {
  return rules().map((rule) => ({ source: `rule ${rule.alert ?? rule.record}`, expr: rule.expr }));
}

const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
]);

/**
 * The metric names a PromQL expression reads. Strings, label matchers, ranges, grouping
 * label lists and Grafana variables are removed first; what is left and is not a function
 * call or a keyword names a metric.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\boffset\s+\S+/g, " ")
    .replace(/\$\{?\w+\}?/g, " ");
  const names = new Set<string>();
  for (const match of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = bare.slice((match.index ?? 0) + match[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(match[0])) continue;
    // Digits followed by letters (1e3, 0x1f) are numbers, not names.
    if (/[0-9.]$/.test(bare.slice(0, match.index))) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** A histogram's or summary's series name back to the metric that exports it. */
export const baseName = (name: string) => name.replace(/_(bucket|sum|count)$/, "");
