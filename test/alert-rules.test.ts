// The alert rules and dashboards as Prometheus sees them: promtool checks the rules, runs
// their unit tests (each alert fires and falls silent), and parses every dashboard query.
// Each alert also points to a runbook section that exists.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadYaml } from "@kubernetes/client-node";
import { dashboardQueries, ROOT, RULES_DIR, ruleFiles, rules } from "./support/monitoring-files.ts";

const TESTS_DIR = join(RULES_DIR, "tests");
const ALERTS = [
  "UploadsStuck",
  "DeadLetterQueueNotEmpty",
  "QueueGrowingAtMaxWorkers",
  "SluiceProgramDown",
  "HighErrorRatio",
];

const promtoolMissing =
  spawnSync("promtool", ["--version"]).error === undefined
    ? false
    : "promtool is not installed here (Debian: apt-get install -y --no-install-recommends prometheus); .ci/run installs it";

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync("promtool", args, { cwd: ROOT, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const ruleTests = () =>
  readdirSync(TESTS_DIR)
    .filter((name) => name.endsWith(".yaml"))
    .map((name) => join(TESTS_DIR, name));

test("the rule files pass promtool check rules", { skip: promtoolMissing }, () => {
  const { status, output } = promtool("check", "rules", ...ruleFiles());
  assert.equal(status, 0, output);
});

test("every alert fires and falls silent as its promtool unit tests expect", {
  skip: promtoolMissing,
}, () => {
  const { status, output } = promtool("test", "rules", ...ruleTests());
  assert.equal(status, 0, output);
  assert.match(output, /SUCCESS/);
});

test("every dashboard query is valid PromQL", { skip: promtoolMissing }, () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-dashboard-queries-"));
  try {
    // Grafana fills its variables in before Prometheus sees the query; so does this.
    const queries = dashboardQueries().map((query) => ({
      ...query,
      expr: query.expr.replaceAll("$__rate_interval", "5m").replace(/\$\{?\w+\}?/g, ".*"),
    }));
    const file = join(dir, "dashboard-queries.json");
    // JSON is YAML, and keeps each query exactly as written.
    writeFileSync(
      file,
      JSON.stringify({
        groups: [
          {
            name: "dashboards",
            rules: queries.map((q, i) => ({ record: `dashboard_query_${i}`, expr: q.expr })),
          },
        ],
      }),
    );
    const { status, output } = promtool("check", "rules", file);
    assert.equal(
      status,
      0,
      `${output}\n${queries.map((q, i) => `dashboard_query_${i}: ${q.source}`).join("\n")}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the alerts are all there, each with a summary and a runbook section that exists", () => {
  const alerts = rules().filter((rule) => rule.alert);
  assert.deepEqual(alerts.map((rule) => rule.alert).sort(), [...ALERTS].sort());
  const runbook = readFileSync(join(ROOT, "docs", "runbook.md"), "utf8");
  const anchors = new Set(
    [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) =>
      (m[1] ?? "")
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, "")
        .replaceAll(" ", "-"),
    ),
  );
  for (const rule of alerts) {
    assert.ok(rule.annotations?.summary, `${rule.alert} has a summary`);
    const [path, anchor] = (rule.annotations?.runbook_url ?? "").split("#");
    assert.equal(path, "docs/runbook.md", `${rule.alert} points to the runbook`);
    assert.ok(
      anchors.has(anchor ?? ""),
      `docs/runbook.md has a section #${anchor} for ${rule.alert}`,
    );
    assert.ok(rule.labels?.severity, `${rule.alert} has a severity`);
  }
});

test("the promtool unit tests make every alert fire and also expect it silent", () => {
  type AlertTest = { alertname: string; exp_alerts?: unknown[] };
  const cases = ruleTests().flatMap((file) =>
    loadYaml<{ tests: Array<{ alert_rule_test?: AlertTest[] }> }>(
      readFileSync(file, "utf8"),
    ).tests.flatMap((t) => t.alert_rule_test ?? []),
  );
  for (const alert of ALERTS) {
    const mine = cases.filter((c) => c.alertname === alert);
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `a test where ${alert} fires`,
    );
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `a test where ${alert} stays silent`,
    );
  }
});
