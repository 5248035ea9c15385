// What a platform team needs to install the chart without edits: releases that share
// services, use as a subchart, routes in, monitoring, migrations and operators' Secrets.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe as group, test } from "node:test";
import { KUBERNETES_PERMISSIONS } from "../../src/controller/kubernetes.ts";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { loadConfig } from "../../src/core/config.ts";
import { scratchDir } from "../support/scratch.ts";
import {
  chartDir,
  container,
  type DeploymentSpec,
  deploymentSpec,
  find,
  helm,
  type PodSpec,
  type Rendered,
  render,
  root,
} from "./chart.ts";
import { validateObject } from "./strict-schema.ts";

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

group("as a subchart", () => {
  /** A parent chart holding this one under charts/, as a platform's umbrella chart does. */
  function umbrella(values: string): string {
    const parent = scratchDir("umbrella");
    writeFileSync(
      join(parent, "Chart.yaml"),
      "apiVersion: v2\nname: platform\nversion: 1.0.0\ndependencies:\n  - name: sluice\n    version: 0.1.0\n",
    );
    writeFileSync(join(parent, "values.yaml"), values);
    mkdirSync(join(parent, "charts"));
    cpSync(chartDir, join(parent, "charts", "sluice"), { recursive: true });
    return parent;
  }

  test("takes the parent's global values, pod labels, priority, accounts, digest and volumes", async () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    const chart = umbrella(
      [
        "global:",
        "  imageRegistry: registry.example.com",
        "  team: data",
        "sluice:",
        "  image:",
        "    repository: registry.example.com/sluice",
        `    digest: "${digest}"`,
        "  revisionHistoryLimit: 3",
        "  podLabels: { cost-center: ingest }",
        "  podAnnotations: { example.com/owner: data }",
        "  priorityClassName: platform-high",
        "  api:",
        "    podLabels: { tier: edge }",
        "    priorityClassName: platform-critical",
        "    extraVolumes: [{ name: ca, configMap: { name: corporate-ca } }]",
        "    extraVolumeMounts: [{ name: ca, mountPath: /etc/ssl/corporate, readOnly: true }]",
        "  worker:",
        "    serviceAccount: { create: false, name: platform-s3-writer }",
        "  controller:",
        "    serviceAccount: { name: sluice-reporter }",
      ].join("\n"),
    );
    const objects = await render({ chart, release: "platform" });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const deployments = objects.filter((o) => o.kind === "Deployment");
    assert.equal(deployments.length, 3);
    for (const deployment of deployments) {
      const spec = deployment.spec as unknown as DeploymentSpec & { revisionHistoryLimit?: number };
      const pod = spec.template as {
        metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        spec: PodSpec & { priorityClassName?: string };
      };
      const api = deployment.metadata.name.endsWith("-api");
      assert.equal(spec.revisionHistoryLimit, 3);
      assert.equal(pod.metadata.labels["cost-center"], "ingest");
      assert.equal(pod.metadata.labels.tier, api ? "edge" : undefined);
      assert.equal(pod.metadata.annotations?.["example.com/owner"], "data");
      assert.equal(pod.spec.priorityClassName, api ? "platform-critical" : "platform-high");
      assert.equal(pod.spec.containers[0]?.image, `registry.example.com/sluice@${digest}`);
      const mounted = pod.spec.containers[0]?.volumeMounts?.some((m) => m.name === "ca");
      assert.equal(mounted, api, deployment.metadata.name);
      assert.equal(
        pod.spec.volumes?.some((v) => v.name === "ca"),
        api,
      );
    }

    const accounts = objects.filter((o) => o.kind === "ServiceAccount").map((o) => o.metadata.name);
    assert.deepEqual(accounts.sort(), ["platform-sluice-api", "sluice-reporter"]);
    const podAccount = (program: string) =>
      deploymentSpec(find(objects, "Deployment", `platform-sluice-${program}`)).template.spec
        .serviceAccountName;
    assert.equal(podAccount("worker"), "platform-s3-writer");
    assert.equal(podAccount("controller"), "sluice-reporter");
    const binding = find(objects, "RoleBinding", "platform-sluice-controller");
    assert.deepEqual(binding.subjects, [
      { kind: "ServiceAccount", name: "sluice-reporter", namespace: "sluice" },
    ]);
  });
});

group("routes into the api", () => {
  type Path = { path: string; pathType: string; backend: { service: Record<string, unknown> } };
  type HttpRoute = {
    parentRefs: Record<string, string>[];
    hostnames?: string[];
    rules: {
      matches: { path: { type: string; value: string } }[];
      backendRefs: { name: string; port: number }[];
      timeouts?: Record<string, string>;
    }[];
  };

  test("off by default", async () => {
    const kinds = (await render()).map((o) => o.kind);
    assert.equal(kinds.includes("Ingress") || kinds.includes("HTTPRoute"), false);
  });

  test("an Ingress sends only /uploads and /targets to the api, streaming bodies of any size", async () => {
    const objects = await render({
      set: [
        "ingress.enabled=true",
        "ingress.className=nginx",
        "ingress.hosts[0]=uploads.example.com",
        "ingress.tls[0].secretName=uploads-tls",
        "ingress.tls[0].hosts[0]=uploads.example.com",
      ],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const ingress = find(objects, "Ingress", "sluice-api");
    const annotations = ingress.metadata.annotations ?? {};
    assert.equal(annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"], "off");
    assert.equal(annotations["nginx.ingress.kubernetes.io/proxy-body-size"], "0");
    for (const timeout of ["proxy-read-timeout", "proxy-send-timeout"]) {
      assert.ok(Number(annotations[`nginx.ingress.kubernetes.io/${timeout}`]) >= 3600, timeout);
    }
    const spec = ingress.spec as {
      ingressClassName: string;
      rules: { host?: string; http: { paths: Path[] } }[];
      tls: unknown[];
    };
    assert.equal(spec.ingressClassName, "nginx");
    assert.deepEqual(spec.tls, [{ secretName: "uploads-tls", hosts: ["uploads.example.com"] }]);
    const service = find(objects, "Service", "sluice-api");
    const port = (service.spec as { ports: { name: string; port: number }[] }).ports[0];
    for (const rule of spec.rules) {
      assert.equal(rule.host, "uploads.example.com");
      // /metrics, /healthz and /readyz answer without a key: they stay inside the cluster.
      assert.deepEqual(
        rule.http.paths.map((p) => [p.path, p.pathType]),
        [
          ["/uploads", "Prefix"],
          ["/targets", "Prefix"],
        ],
      );
      for (const path of rule.http.paths) {
        assert.deepEqual(path.backend.service, {
          name: service.metadata.name,
          port: { name: port?.name },
        });
      }
    }
  });

  test("an HTTPRoute sends only /uploads and /targets to the api, with no request timeout", async () => {
    await assert.rejects(
      render({ set: ["httpRoute.enabled=true"] }),
      /httpRoute.parentRefs/,
      "a route attached to no Gateway is refused",
    );
    const objects = await render({
      set: [
        "httpRoute.enabled=true",
        "httpRoute.parentRefs[0].name=public",
        "httpRoute.parentRefs[0].namespace=gateways",
        "httpRoute.hostnames[0]=uploads.example.com",
      ],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const route = find(objects, "HTTPRoute", "sluice-api").spec as unknown as HttpRoute;
    assert.deepEqual(route.parentRefs, [{ name: "public", namespace: "gateways" }]);
    assert.deepEqual(route.hostnames, ["uploads.example.com"]);
    const service = find(objects, "Service", "sluice-api");
    const port = (service.spec as { ports: { port: number }[] }).ports[0]?.port;
    const [rule] = route.rules;
    assert.deepEqual(rule?.matches, [
      { path: { type: "PathPrefix", value: "/uploads" } },
      { path: { type: "PathPrefix", value: "/targets" } },
    ]);
    assert.deepEqual(rule?.backendRefs, [{ name: service.metadata.name, port }]);
    // A multi-gigabyte body takes minutes; some gateways cut a request after 15 seconds.
    assert.equal(rule?.timeouts?.request, "0s");
  });
});

group("monitoring under any release name", () => {
  type Rule = { alert?: string; expr: string; annotations?: Record<string, string> };
  const rulesOf = (objects: Rendered[], name: string) =>
    (find(objects, "PrometheusRule", name).spec as { groups: { rules: Rule[] }[] }).groups.flatMap(
      (g) => g.rules,
    );

  test("runbook_url is absolute, from metrics.prometheusRule.runbookUrl", async () => {
    const runbook = "https://runbooks.example.com/sluice/runbook.html";
    const objects = await render({
      set: ["metrics.prometheusRule.enabled=true", `metrics.prometheusRule.runbookUrl=${runbook}`],
    });
    const alerts = rulesOf(objects, "sluice").filter((r) => r.alert);
    assert.ok(alerts.length >= 5);
    for (const rule of alerts) {
      assert.match(
        rule.annotations?.runbook_url ?? "",
        new RegExp(`^${runbook.replaceAll(".", "\\.")}#${rule.alert?.toLowerCase()}$`),
      );
    }
  });

  test("alerts select the chart's labels, never a name that holds the release's", async () => {
    const objects = await render({
      release: "ingest",
      set: [
        "fullnameOverride=ingest",
        "metrics.prometheusRule.enabled=true",
        "metrics.serviceMonitor.enabled=true",
      ],
    });
    for (const rule of rulesOf(objects, "ingest")) {
      const byName = /\b(job|service|pod|deployment|horizontalpodautoscaler|container)=~?"[^"]*"/;
      assert.doesNotMatch(rule.expr, byName, `${rule.alert}: selects by an object's name`);
    }
    // What the rules select on, the ServiceMonitor copies from the chart's Services.
    const monitor = find(objects, "ServiceMonitor", "ingest");
    const targetLabels = (monitor.spec as { targetLabels?: string[] }).targetLabels ?? [];
    for (const label of ["app.kubernetes.io/part-of", "app.kubernetes.io/component"]) {
      assert.ok(targetLabels.includes(label), `the ServiceMonitor copies ${label}`);
      for (const service of objects.filter((o) => o.kind === "Service")) {
        assert.ok(service.metadata.labels?.[label], `${service.metadata.name} has ${label}`);
      }
    }
  });
});

group("dashboards of several releases in one Grafana", () => {
  type Dashboard = { uid: string; title: string } & Record<string, unknown>;
  const dashboardsOf = async (release: string, namespace: string) =>
    (await render({ release, namespace, set: ["metrics.dashboards.enabled=true"] }))
      .filter((o) => o.metadata.labels?.grafana_dashboard === "1")
      .flatMap((o) => Object.entries(o.data as Record<string, string>))
      .map(([file, json]) => ({ file, dashboard: JSON.parse(json) as Dashboard }));

  test("each release's dashboards have their own uid and title, and are otherwise the project's", async () => {
    const releases = [
      await dashboardsOf("sluice", "sluice"),
      await dashboardsOf("sluice", "staging"),
      await dashboardsOf("ingest", "sluice"),
    ];
    const all = releases.flat();
    assert.equal(all.length, 6);
    const uids = all.map((d) => d.dashboard.uid);
    assert.equal(new Set(uids).size, uids.length, `uids collide: ${uids.join(", ")}`);
    for (const uid of uids) assert.match(uid, /^[A-Za-z0-9_-]{1,40}$/, "a uid Grafana accepts");
    const titles = all.map((d) => d.dashboard.title);
    assert.equal(new Set(titles).size, titles.length, `titles collide: ${titles.join(", ")}`);
    for (const { file, dashboard } of all) {
      const project = JSON.parse(readFileSync(join(chartDir, "dashboards", file), "utf8"));
      const { uid: _uid, title, ...rest } = dashboard;
      const { uid: _projectUid, title: projectTitle, ...projectRest } = project;
      assert.deepEqual(rest, projectRest, `${file}: only the uid and the title change`);
      assert.ok(title.startsWith(projectTitle), `${file}: ${title}`);
    }
    // The same release renders the same uids, so an upgrade keeps Grafana's links to them.
    const again = (await dashboardsOf("sluice", "sluice")).map((d) => d.dashboard.uid);
    assert.deepEqual(
      again,
      releases[0]?.map((d) => d.dashboard.uid),
    );
  });
});

group("install notes", () => {
  async function notes(set: string[]): Promise<string> {
    const args = ["install", "ingest", chartDir, "--dry-run=client", "--namespace", "data"];
    const { stdout } = await helm([...args, ...set.flatMap((value) => ["--set", value])]);
    return stdout.slice(stdout.indexOf("NOTES:"));
  }

  test("say how to reach the api, get a key and watch an upload land", async () => {
    const forwarded = await notes([]);
    assert.match(forwarded, /port-forward service\/ingest-sluice-api 3000:80/);
    assert.match(forwarded, /get secret ingest-sluice-credentials/);
    assert.match(forwarded, /curl -N .*http:\/\/127\.0\.0\.1:3000\/uploads\/<id>\/events/);

    const routed = await notes([
      "ingress.enabled=true",
      "ingress.hosts[0]=uploads.example.com",
      "ingress.tls[0].hosts[0]=uploads.example.com",
      "ingress.tls[0].secretName=uploads-tls",
    ]);
    assert.match(routed, /curl -N .*https:\/\/uploads\.example\.com\/uploads\/<id>\/events/);
    assert.doesNotMatch(routed, /port-forward/);
  });

  test("with the default image, which no registry publishes, say how to build and push it", async () => {
    const local = await notes([]);
    assert.match(local, /docker build -t <registry>\/sluice:0\.1\.0 \./);
    assert.match(local, /docker push <registry>\/sluice:0\.1\.0/);
    assert.match(
      local,
      /helm upgrade ingest .* --namespace data --reuse-values --set image\.repository=<registry>\/sluice/,
    );
    const pushed = await notes(["image.repository=registry.example.com/sluice"]);
    assert.doesNotMatch(pushed, /docker (build|push)/);
  });

  test("without API_KEYS in production, name the api as the program that refuses to start", async () => {
    const warned = await notes(["secret.env.DATABASE_URL=postgres://db/sluice"]);
    assert.match(warned, /the api refuses to start without API keys/);
    // The worker and the controller serve no uploads, and start without them.
    assert.doesNotMatch(warned, /the programs refuse/);
  });
});

group("credentials from operators' Secrets", () => {
  test("each variable may name its Secret and key, as an operator wrote them", async () => {
    const objects = await render({
      files: [],
      set: [
        "secret.existingSecret=platform-credentials",
        "secret.keyRefs.DATABASE_URL.name=ingest-db-app",
        "secret.keyRefs.DATABASE_URL.key=uri",
        "secret.keyRefs.API_KEYS.key=sluice-api-keys",
      ],
    });
    for (const deployment of objects.filter((o) => o.kind === "Deployment")) {
      const env = container(deployment).env ?? [];
      const ref = (name: string) => env.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
      assert.deepEqual(
        { name: ref("DATABASE_URL")?.name, key: ref("DATABASE_URL")?.key },
        { name: "ingest-db-app", key: "uri" },
        deployment.metadata.name,
      );
      assert.deepEqual(
        { name: ref("API_KEYS")?.name, key: ref("API_KEYS")?.key },
        { name: "platform-credentials", key: "sluice-api-keys" },
      );
      assert.deepEqual(
        { name: ref("REDIS_URL")?.name, key: ref("REDIS_URL")?.key },
        { name: "platform-credentials", key: "REDIS_URL" },
      );
    }
    assert.equal(objects.filter((o) => o.kind === "Secret").length, 0, "nothing is copied");
  });

  test("a variable the programs do not read is refused", async () => {
    await assert.rejects(render({ set: ["secret.keyRefs.DATABASE_UR.key=uri"] }), /DATABASE_UR/);
  });
});

group("migrations", () => {
  type Job = {
    metadata: { annotations?: Record<string, string> };
    spec: { template: { spec: PodSpec & { restartPolicy: string } } };
  };

  test("off by default: the programs migrate at start, and no Job exists", async () => {
    const objects = await render();
    assert.equal(objects.filter((o) => o.kind === "Job").length, 0);
    assert.equal(settings(objects, "sluice").MIGRATE_AT_START, undefined);
  });

  test("on: a pre-install/pre-upgrade Job migrates with its own credentials, the programs do not", async () => {
    const objects = await render({
      set: [
        "migrations.enabled=true",
        "migrations.existingSecret=sluice-db-superuser",
        "migrations.secretKey=uri",
        "secret.keyRefs.DATABASE_URL.name=sluice-db-app",
        "secret.keyRefs.DATABASE_URL.key=uri",
      ],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    assert.equal(settings(objects, "sluice").MIGRATE_AT_START, "false");
    const parsed = loadConfig({ ...settings(objects, "sluice"), API_KEYS: "acme:k3y" });
    assert.equal(parsed.migrateAtStart, false);
    const job = find(objects, "Job", "sluice-migrate") as unknown as Job;
    assert.equal(job.metadata.annotations?.["helm.sh/hook"], "pre-install,pre-upgrade");
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, "Never");
    assert.equal(pod.automountServiceAccountToken, false);
    const c = pod.containers[0];
    assert.deepEqual(c?.command, ["node", "dist/core/db/migrate.main.js"]);
    assert.equal(existsSync(join(root, "src", "core", "db", "migrate.main.ts")), true);
    assert.match(
      JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts.migrate,
      /src\/core\/db\/migrate\.main\.ts$/,
    );
    assert.deepEqual(c?.env?.find((e) => e.name === "DATABASE_URL")?.valueFrom, {
      secretKeyRef: { name: "sluice-db-superuser", key: "uri" },
    });
    // Before install nothing of the release exists: the Job reads no ConfigMap of it.
    assert.equal(c?.envFrom, undefined);
    assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
  });

  test("on, with the chart's own Secret: the Job reads DATABASE_URL from a hook Secret made first", async () => {
    const objects = await render({
      set: [
        "migrations.enabled=true",
        "secret.env.DATABASE_URL=postgres://owner:pw@db:5432/sluice",
      ],
    });
    const job = find(objects, "Job", "sluice-migrate") as unknown as Job;
    const ref = job.spec.template.spec.containers[0]?.env?.find((e) => e.name === "DATABASE_URL")
      ?.valueFrom?.secretKeyRef as { name: string; key: string };
    const secret = find(objects, "Secret", ref.name);
    assert.equal(secret.metadata.annotations?.["helm.sh/hook"], "pre-install,pre-upgrade");
    assert.ok(
      Number(secret.metadata.annotations?.["helm.sh/hook-weight"]) <
        Number(job.metadata.annotations?.["helm.sh/hook-weight"]),
      "the Secret is made before the Job",
    );
    assert.equal(
      (secret.stringData as Record<string, string>)[ref.key],
      "postgres://owner:pw@db:5432/sluice",
    );
  });

  test("with config.CREATE_BUCKET, the Job makes the bucket with the programs' S3 settings and keys", async () => {
    const env = async (set: string[]) => {
      const objects = await render({
        set: [
          "migrations.enabled=true",
          "config.CREATE_BUCKET=true",
          "config.S3_BUCKET=acme-batches",
          "config.AWS_REGION=eu-west-1",
          ...set,
        ],
      });
      const job = find(objects, "Job", "sluice-migrate") as unknown as Job;
      return { objects, env: job.spec.template.spec.containers[0]?.env ?? [] };
    };
    const value = (list: { name: string; value?: string }[], name: string) =>
      list.find((e) => e.name === name)?.value;

    // The chart's own Secret does not exist before an install: the keys go in the hook Secret.
    const own = await env([
      "secret.env.DATABASE_URL=postgres://owner:pw@db:5432/sluice",
      "secret.env.AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
      "secret.env.AWS_SECRET_ACCESS_KEY=s3cr3t",
    ]);
    assert.equal(value(own.env, "CREATE_BUCKET"), "true");
    assert.equal(value(own.env, "S3_BUCKET"), "acme-batches");
    assert.equal(value(own.env, "AWS_REGION"), "eu-west-1");
    const keyRef = own.env.find((e) => e.name === "AWS_SECRET_ACCESS_KEY")?.valueFrom
      ?.secretKeyRef as { name: string; key: string };
    const hook = find(own.objects, "Secret", keyRef.name);
    assert.equal(hook.metadata.annotations?.["helm.sh/hook"], "pre-install,pre-upgrade");
    assert.equal((hook.stringData as Record<string, string>)[keyRef.key], "s3cr3t");
    const parsed = loadConfig(
      Object.fromEntries(
        own.env.flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
      ),
      { needsApiKeys: false },
    );
    assert.equal(parsed.s3.createBucket, true);

    // An existing Secret is read in place; with neither (IRSA), no key is set.
    const existing = await env(["secret.existingSecret=acme-sluice"]);
    assert.deepEqual(
      existing.env.find((e) => e.name === "AWS_ACCESS_KEY_ID")?.valueFrom?.secretKeyRef,
      { name: "acme-sluice", key: "AWS_ACCESS_KEY_ID" },
    );
    const irsa = await env(["secret.env.DATABASE_URL=postgres://owner:pw@db:5432/sluice"]);
    assert.equal(
      irsa.env.some((e) => e.name.startsWith("AWS_ACCESS") || e.name.startsWith("AWS_SECRET")),
      false,
    );

    // Without it, the Job knows nothing of S3.
    const objects = await render({
      set: ["migrations.enabled=true", "secret.env.DATABASE_URL=postgres://o:p@db:5432/sluice"],
    });
    const job = find(objects, "Job", "sluice-migrate") as unknown as Job;
    const names = (job.spec.template.spec.containers[0]?.env ?? []).map((e) => e.name);
    assert.deepEqual(
      names.filter((name) => name.startsWith("AWS_") || name.includes("BUCKET")),
      [],
    );
  });
});
