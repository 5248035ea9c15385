// What a platform team needs to install the chart without edits: releases that share
// services, use as a subchart, routes in, monitoring, migrations and operators' Secrets.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe as group, test } from "node:test";
import { KUBERNETES_PERMISSIONS } from "../../src/controller/kubernetes.ts";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { loadConfig } from "../../src/core/config.ts";
import { chartDir, find, type Rendered, render } from "./chart.ts";

function settings(objects: Rendered[], fullname: string): Record<string, string> {
  return find(objects, "ConfigMap", `${fullname}-config`).data as Record<string, string>;
}

group("releases sharing one broker and one Redis", () => {
  test("each release gets its own SLUICE_NAMESPACE, which the code accepts", async () => {
    const namespaces = new Set<string>();
    for (const [namespace, release, fullname] of [
      ["team-a", "sluice", "sluice"],
      ["team-a", "sluice-staging", "sluice-staging"],
      ["team-b", "sluice", "sluice"],
      ["team-b", "ingest.v2", "ingest.v2-sluice"],
    ] as const) {
      const objects = await render({ namespace, release });
      const value = settings(objects, fullname).SLUICE_NAMESPACE;
      assert.ok(value, `${namespace}/${release}: SLUICE_NAMESPACE is set`);
      assert.equal(loadConfig({ SLUICE_NAMESPACE: value }).namespace, value);
      namespaces.add(value);
    }
    assert.equal(namespaces.size, 4, [...namespaces].join(", "));
  });

  test("KEDA watches the release's own queue; an explicit value wins", async () => {
    const objects = await render({
      namespace: "team-a",
      release: "ingest",
      set: ["worker.scaling=keda"],
    });
    const namespace = settings(objects, "ingest-sluice").SLUICE_NAMESPACE ?? "";
    const scaled = find(objects, "ScaledObject", "ingest-sluice-worker");
    const [trigger] = (scaled.spec as { triggers: { metadata: { queueName: string } }[] }).triggers;
    assert.equal(trigger?.metadata.queueName, queueNames(namespace).batches);

    const fixed = await render({ release: "ingest", set: ["config.SLUICE_NAMESPACE=shared"] });
    assert.equal(settings(fixed, "ingest-sluice").SLUICE_NAMESPACE, "shared");
  });
});

group("documentation", () => {
  test("the chart's README grants the controller exactly what it calls", () => {
    const readme = readFileSync(join(chartDir, "README.md"), "utf8").replace(/\s+/g, " ");
    const sentence = /its Role allows exactly: (.*?)\./.exec(readme)?.[1] ?? "";
    const documented = [
      ...sentence.matchAll(/((?:`[a-z]+`\/?)+) on (?:`([a-z]+)`|the worker (Deployment))/g),
    ]
      .flatMap(([, verbs = "", resource, deployment]) =>
        [...verbs.matchAll(/`([a-z]+)`/g)].map(
          ([, verb]) => `${resource ?? `${deployment?.toLowerCase()}s`}:${verb}`,
        ),
      )
      .sort();
    const calls = KUBERNETES_PERMISSIONS.flatMap((p) =>
      p.verbs.map((verb) => `${p.resource}:${verb}`),
    ).sort();
    assert.deepEqual(documented, calls);
  });
});
