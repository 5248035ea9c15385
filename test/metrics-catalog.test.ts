// Every metric a dashboard panel or an alert reads is one the programs really export: the
// api, a worker and the controller run here, and their live /metrics are scraped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sampleCsv } from "./support/csv-samples.ts";
import {
  baseName,
  dashboardQueries,
  metricNames,
  type Query,
  ruleQueries,
} from "./support/monitoring-files.ts";
import {
  getJson,
  type InProcessController,
  stackForTests,
  startControllerInProcess,
  waitFor,
} from "./support/stack.ts";

/**
 * Metrics the dashboards and alerts read that no Sluice program exports, each with where it
 * comes from. Anything else must be exported by a program.
 */
const EXTERNAL = new Map([
  ["up", "Prometheus itself: one series per scrape target, 0 when the scrape fails"],
  [
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube-state-metrics: replicas the worker autoscaler (KEDA's HPA, or the chart's HPA) runs",
  ],
  [
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube-state-metrics: the most replicas that autoscaler may run",
  ],
  [
    "kube_horizontalpodautoscaler_info",
    "kube-state-metrics: the Deployment each autoscaler scales, to find the workers' one",
  ],
]);

let controller: InProcessController;
const stack = stackForTests(
  { BATCH_SIZE: "100", CONTROLLER_INTERVAL_SECONDS: "1" },
  {},
  async ({ env, stopLater }) => {
    controller = stopLater(await startControllerInProcess(env, undefined));
  },
);

/**
 * The metrics a /metrics page declares (# TYPE), and the samples it holds with their
 * histogram suffixes removed. A labelled metric nothing has happened to yet (the GC
 * histogram before the first collection) is declared without samples.
 */
async function exported(url: string): Promise<Set<string>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const declared = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) /.exec(line)?.[1];
    const sampled = line.startsWith("#") ? undefined : /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    for (const name of [declared, sampled]) if (name) names.add(baseName(name)).add(name);
  }
  return names;
}

test("the query parser finds metric names and nothing else", () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.95, sum by (le, route) (rate(sluice_http_request_duration_seconds_bucket{namespace=~"$namespace", code=~"5.."}[$__rate_interval]))) * 60',
    ),
    ["sluice_http_request_duration_seconds_bucket"],
  );
  assert.deepEqual(
    metricNames(
      'a_total / on (namespace) group_left (pod) b{x="y"} and count by (job) (up == 0) > bool 1e3 or label_replace(c, "s", "v", "", "") offset 5m',
    ),
    ["a_total", "b", "up", "c"],
  );
});

test("every metric the dashboards and alerts read is exported by a program or explained", async () => {
  const id = (
    await getJson(`${stack.api.url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: sampleCsv(300).csv,
    })
  ).body.id;
  await waitFor(
    "the upload to complete",
    async () => (await getJson(`${stack.api.url}/uploads/${id}`)).body.status === "completed",
  );
  // Gauges the controller sets at its checks, and reads at each scrape.
  await waitFor("the controller's first check", async () =>
    (await exported(controller.url)).has("sluice_uploads_in_progress"),
  );

  const programs = {
    api: await exported(stack.api.url),
    worker: await exported(stack.api.workerUrl as string),
    controller: await exported(controller.url),
  };
  const queries: Query[] = [...dashboardQueries(), ...ruleQueries()];
  assert.ok(queries.length >= 30, `found only ${queries.length} queries: the files were not read`);

  const missing: string[] = [];
  const externalUsed = new Set<string>();
  for (const query of queries) {
    const names = metricNames(query.expr);
    assert.ok(names.length > 0, `${query.source}: no metric found in ${query.expr}`);
    for (const name of names) {
      if (EXTERNAL.has(name)) {
        externalUsed.add(name);
        continue;
      }
      const metric = baseName(name);
      if (!Object.values(programs).some((names) => names.has(metric)))
        missing.push(`${query.source}: ${name}`);
    }
  }
  assert.deepEqual(missing, [], "queried but exported by no program");
  assert.deepEqual(
    [...EXTERNAL.keys()].filter((name) => !externalUsed.has(name)),
    [],
    "allowed external metrics that nothing reads any more",
  );
});

test("each program exports its own metrics and never labels a series with an upload id", async () => {
  const own = {
    api: [
      "sluice_upload_bytes_received_total",
      "sluice_rows_published_total",
      "sluice_http_requests_total",
    ],
    worker: [
      "sluice_batches_consumed_total",
      "sluice_rows_landed_total",
      "sluice_batch_duration_seconds",
    ],
    controller: ["sluice_queue_messages", "sluice_uploads_stuck", "sluice_controller_leader"],
  };
  const urls = {
    api: stack.api.url,
    worker: stack.api.workerUrl as string,
    controller: controller.url,
  };
  for (const [program, names] of Object.entries(own)) {
    const text = await (await fetch(`${urls[program as keyof typeof urls]}/metrics`)).text();
    for (const name of names)
      assert.match(text, new RegExp(`^${name}\\S* `, "m"), `${program} exports ${name}`);
    assert.match(text, new RegExp(`program="${program}"`));
    assert.doesNotMatch(
      text,
      /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/,
      `${program} labels hold no upload id`,
    );
  }
});
