import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe as group, test } from "node:test";
import { parse } from "yaml";
import { KUBERNETES_PERMISSIONS } from "../../src/controller/kubernetes.ts";
import {
  chartDir,
  container,
  copyChart,
  deploymentSpec,
  describe,
  find,
  helm,
  type Rendered,
  render,
  valueSets,
} from "./chart.ts";
import { validateObject } from "./strict-schema.ts";

const PROGRAMS = ["api", "worker", "controller"] as const;

group("every value set", () => {
  for (const { name, files } of valueSets) {
    test(`${name}: helm lint --strict passes`, async () => {
      const args = ["lint", "--strict", chartDir, ...files.flatMap((file) => ["--values", file])];
      await helm(args);
    });

    test(`${name}: every rendered object matches its Kubernetes schema, with no unknown field`, async () => {
      const objects = await render({ files });
      assert.ok(objects.length > 10);
      const problems = objects.flatMap(validateObject);
      assert.deepEqual(problems, []);
    });

    test(`${name}: every object carries Helm's recommended labels`, async () => {
      for (const object of await render({ files })) {
        const labels = object.metadata.labels ?? {};
        for (const label of [
          "app.kubernetes.io/name",
          "app.kubernetes.io/instance",
          "app.kubernetes.io/managed-by",
          "helm.sh/chart",
        ]) {
          assert.ok(labels[label], `${describe(object)} lacks ${label}`);
        }
        if (object.kind === "Deployment") {
          assert.ok(labels["app.kubernetes.io/component"], `${describe(object)} lacks component`);
        }
      }
    });

    test(`${name}: pods meet the restricted Pod Security Standard`, async () => {
      const objects = await render({ files });
      // The Deployments' pods, and the pod `helm test` runs.
      const pods = objects.filter((o) => o.kind === "Deployment" || o.kind === "Pod");
      assert.ok(pods.some((o) => o.kind === "Pod"));
      for (const object of pods) {
        const pod =
          object.kind === "Pod"
            ? (object.spec as unknown as ReturnType<typeof deploymentSpec>["template"]["spec"])
            : deploymentSpec(object).template.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true);
        assert.deepEqual(pod.securityContext?.seccompProfile, { type: "RuntimeDefault" });
        for (const c of pod.containers) {
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, describe(object));
          assert.deepEqual(c.securityContext?.capabilities, { drop: ["ALL"] });
          assert.equal(c.securityContext?.runAsNonRoot, true);
          assert.ok(
            c.volumeMounts?.some((m) => m.mountPath === "/tmp"),
            "/tmp is writable",
          );
        }
        const hostPath = (pod.volumes ?? []).some((v) => "hostPath" in v);
        assert.equal(hostPath, false, `${describe(object)} mounts a host path`);
      }
    });
  }
});

test("Chart.yaml names its maintainers and what the chart runs on, and no address Sluice does not publish", () => {
  const chart = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8"));
  assert.deepEqual(chart.maintainers, [{ name: "The Sluice team" }]);
  for (const keyword of ["csv", "upload", "postgresql", "rabbitmq", "redis", "s3", "keda"]) {
    assert.ok(chart.keywords?.includes(keyword), `keyword ${keyword}`);
  }
  // Helm takes these as URLs only, and the project has no public address yet; the web page's
  // icon (web/icon.svg) is served by each api, not from a stable URL.
  for (const field of ["home", "sources", "icon"]) {
    assert.equal(chart[field], undefined, `${field} would name an address that does not exist`);
  }
});

group("values schema", () => {
  test("rejects an unknown key", async () => {
    await assert.rejects(
      helm(["template", "sluice", chartDir, "--set", "worker.replica=3"]),
      /additional properties 'replica' not allowed/,
    );
    await assert.rejects(
      helm(["template", "sluice", chartDir, "--set", "config.BATCH_SIZ=10"]),
      /additional properties 'BATCH_SIZ' not allowed/,
    );
  });

  test("rejects a wrong type or an unknown choice", async () => {
    await assert.rejects(
      helm(["template", "sluice", chartDir, "--set-string", "api.replicas=three"]),
      /got string, want integer/,
    );
    await assert.rejects(
      helm(["template", "sluice", chartDir, "--set", "worker.scaling=always"]),
      /scaling/,
    );
  });
});

group("worker scaling", () => {
  const worker = (objects: Rendered[]) => find(objects, "Deployment", "sluice-worker");

  test("fixed: the Deployment carries the count and no autoscaler exists", async () => {
    const objects = await render({ set: ["worker.scaling=fixed", "worker.replicas=4"] });
    assert.equal(deploymentSpec(worker(objects)).replicas, 4);
    assert.equal(
      objects.filter((o) => /ScaledObject|HorizontalPodAutoscaler/.test(o.kind)).length,
      0,
    );
  });

  test("fixed with a null count leaves the field to kubectl scale", async () => {
    const objects = await render({ set: ["worker.scaling=fixed", "worker.replicas=null"] });
    assert.equal("replicas" in deploymentSpec(worker(objects)), false);
  });

  test("keda: no replica count, a rabbitmq ScaledObject on the worker Deployment", async () => {
    const objects = await render({
      set: [
        "worker.scaling=keda",
        "worker.replicas=7",
        "worker.keda.minReplicas=0",
        "worker.keda.maxReplicas=30",
        "worker.keda.cooldownPeriod=120",
        "worker.keda.queueLength=15",
        "worker.keda.activationQueueLength=2",
      ],
    });
    assert.equal("replicas" in deploymentSpec(worker(objects)), false);
    assert.equal(objects.filter((o) => o.kind === "HorizontalPodAutoscaler").length, 0);
    const scaled = find(objects, "ScaledObject", "sluice-worker");
    const spec = scaled.spec as Record<string, unknown>;
    assert.deepEqual(spec.scaleTargetRef, { name: "sluice-worker" });
    assert.equal(spec.minReplicaCount, 0);
    assert.equal(spec.maxReplicaCount, 30);
    assert.equal(spec.cooldownPeriod, 120);
    assert.equal(scaled.metadata.annotations, undefined, "not paused unless asked");
    const [trigger] = spec.triggers as Record<string, Record<string, string>>[];
    assert.equal(trigger?.type, "rabbitmq");
    assert.equal(trigger?.metadata?.mode, "QueueLength");
    assert.equal(trigger?.metadata?.value, "15");
    assert.equal(trigger?.metadata?.activationValue, "2");
    assert.equal(trigger?.metadata?.host, undefined, "the broker URL never sits in the object");

    // The trigger reads RABBITMQ_URL from the very Secret the worker's own variable comes from.
    const auth = find(objects, "TriggerAuthentication", trigger?.authenticationRef?.name ?? "");
    const [ref] = (auth.spec as { secretTargetRef: Record<string, string>[] }).secretTargetRef;
    assert.equal(ref?.parameter, "host");
    assert.equal(ref?.key, "RABBITMQ_URL");
    const brokerUrl = container(worker(objects)).env?.find((e) => e.name === "RABBITMQ_URL");
    assert.equal(ref?.name, brokerUrl?.valueFrom?.secretKeyRef?.name);
  });

  test("keda: pausedReplicas renders KEDA's pause annotation", async () => {
    const objects = await render({ set: ["worker.scaling=keda", "worker.keda.pausedReplicas=0"] });
    const scaled = find(objects, "ScaledObject", "sluice-worker");
    assert.equal(scaled.metadata.annotations?.["autoscaling.keda.sh/paused-replicas"], "0");
  });

  test("keda with an existing Secret reads the broker URL from it", async () => {
    const objects = await render({
      set: ["worker.scaling=keda", "secret.existingSecret=platform-credentials"],
    });
    const auth = find(objects, "TriggerAuthentication", "sluice-worker-rabbitmq");
    const [ref] = (auth.spec as { secretTargetRef: Record<string, string>[] }).secretTargetRef;
    assert.equal(ref?.name, "platform-credentials");
    assert.equal(objects.filter((o) => o.kind === "Secret").length, 0);
  });

  type Trigger = { metadata: Record<string, string>; authenticationRef: { name: string } };
  type AuthRef = { parameter: string; name: string; key: string };
  const kedaObjects = async (set: string[]) => {
    const objects = await render({ set: ["worker.scaling=keda", ...set] });
    const scaled = find(objects, "ScaledObject", "sluice-worker");
    const [trigger] = (scaled.spec as { triggers: Trigger[] }).triggers;
    assert.ok(trigger);
    const auth = find(objects, "TriggerAuthentication", trigger.authenticationRef.name);
    const spec = auth.spec as { secretTargetRef?: AuthRef[]; configMapTargetRef?: AuthRef[] };
    return { objects, scaled, trigger, secretRefs: spec.secretTargetRef ?? [], spec };
  };
  const refused = (set: string[], message: RegExp) =>
    assert.rejects(
      helm([
        "template",
        "sluice",
        chartDir,
        "--namespace",
        "sluice",
        ...["worker.scaling=keda", ...set].flatMap((v) => ["--set", v]),
      ]),
      message,
    );

  test("keda: a broker URL naming a bare Service is refused, since KEDA resolves it from its own namespace", async () => {
    await refused(
      ["secret.env.RABBITMQ_URL=amqp://sluice:secret@rabbitmq:5672"],
      /KEDA runs in its own namespace.*rabbitmq\.sluice\.svc\.cluster\.local/,
    );
    await refused(
      ["worker.keda.host=amqp://rabbitmq:5672"],
      /worker\.keda\.host: KEDA runs in its own namespace/,
    );
    const { secretRefs } = await kedaObjects([
      "secret.env.RABBITMQ_URL=amqp://sluice:secret@rabbitmq.sluice.svc.cluster.local:5672",
    ]);
    assert.deepEqual(secretRefs, [
      { parameter: "host", name: "sluice-credentials", key: "RABBITMQ_URL" },
    ]);
  });

  test("keda: the broker from worker.keda.host, credentials from a Secret's keys", async () => {
    const { trigger, secretRefs } = await kedaObjects([
      "worker.keda.host=amqps://mq.example.com:5671/sluice",
      "worker.keda.secretName=broker-keda",
      "worker.keda.usernameKey=user",
      "worker.keda.passwordKey=pass",
    ]);
    assert.equal(trigger.metadata.host, "amqps://mq.example.com:5671/sluice");
    assert.deepEqual(secretRefs, [
      { parameter: "username", name: "broker-keda", key: "user" },
      { parameter: "password", name: "broker-keda", key: "pass" },
    ]);
    await refused(
      ["worker.keda.host=amqp://sluice:secret@mq.example.com:5672"],
      /worker\.keda\.host carries credentials/,
    );
    await refused(["worker.keda.usernameKey=user"], /usernameKey and worker\.keda\.passwordKey/);
  });

  test("keda: protocol http reads the management API, which counts unacknowledged batches", async () => {
    const { trigger, secretRefs } = await kedaObjects([
      "worker.keda.protocol=http",
      "worker.keda.host=http://rabbitmq.sluice.svc.cluster.local:15672/",
      "worker.keda.usernameKey=RABBITMQ_USER",
      "worker.keda.passwordKey=RABBITMQ_PASSWORD",
    ]);
    assert.equal(trigger.metadata.protocol, "http");
    assert.equal(trigger.metadata.mode, "QueueLength");
    assert.equal(trigger.metadata.host, "http://rabbitmq.sluice.svc.cluster.local:15672/");
    assert.equal(trigger.metadata.excludeUnacknowledged, undefined);
    assert.deepEqual(
      secretRefs.map((r) => r.parameter),
      ["username", "password"],
    );
    // The default amqp protocol says so, rather than leaving it to the URL's scheme.
    assert.equal((await kedaObjects([])).trigger.metadata.protocol, "amqp");
    await refused(["worker.keda.protocol=http"], /protocol=http reads the management API/);
    await refused(
      ["worker.keda.protocol=http", "worker.keda.host=amqp://rabbitmq.sluice.svc:5672"],
      /takes a http or https URL, not amqp/,
    );
  });

  test("keda: TLS with the CA, client certificate and key from the Secret", async () => {
    const { objects, trigger, secretRefs, spec } = await kedaObjects([
      "worker.keda.hostKey=KEDA_RABBITMQ_URL",
      "worker.keda.secretName=broker-keda",
      "worker.keda.tls.enabled=true",
      "worker.keda.tls.caKey=ca.crt",
      "worker.keda.tls.certKey=tls.crt",
      "worker.keda.tls.keyKey=tls.key",
    ]);
    assert.deepEqual(secretRefs, [
      { parameter: "host", name: "broker-keda", key: "KEDA_RABBITMQ_URL" },
      { parameter: "ca", name: "broker-keda", key: "ca.crt" },
      { parameter: "cert", name: "broker-keda", key: "tls.crt" },
      { parameter: "key", name: "broker-keda", key: "tls.key" },
    ]);
    // KEDA reads `tls` from authentication parameters only.
    const [tlsRef] = spec.configMapTargetRef ?? [];
    assert.equal(tlsRef?.parameter, "tls");
    const configMap = find(objects, "ConfigMap", tlsRef?.name ?? "");
    assert.equal((configMap.data as Record<string, string>)[tlsRef?.key ?? ""], "enable");
    assert.equal(trigger.metadata.unsafeSsl, undefined);
    await refused(
      ["worker.keda.tls.enabled=true", "worker.keda.tls.certKey=tls.crt"],
      /certKey and worker\.keda\.tls\.keyKey go together/,
    );
  });

  test("keda: fallback and the HorizontalPodAutoscaler's behavior", async () => {
    const { scaled } = await kedaObjects([
      "worker.keda.fallback.failureThreshold=3",
      "worker.keda.fallback.replicas=4",
      "worker.keda.behavior.scaleDown.stabilizationWindowSeconds=600",
    ]);
    const spec = scaled.spec as Record<string, any>;
    assert.deepEqual(spec.fallback, { failureThreshold: 3, replicas: 4 });
    assert.deepEqual(spec.advanced, {
      horizontalPodAutoscalerConfig: {
        behavior: { scaleDown: { stabilizationWindowSeconds: 600 } },
      },
    });
    const plain = (await kedaObjects([])).scaled.spec as Record<string, unknown>;
    assert.equal(plain.fallback, undefined);
    assert.equal(plain.advanced, undefined);
  });

  test("hpa: no replica count, a CPU HorizontalPodAutoscaler", async () => {
    const objects = await render({ set: ["worker.scaling=hpa", "worker.hpa.maxReplicas=9"] });
    assert.equal("replicas" in deploymentSpec(worker(objects)), false);
    const hpa = find(objects, "HorizontalPodAutoscaler", "sluice-worker");
    const spec = hpa.spec as { maxReplicas: number; metrics: { resource: { name: string } }[] };
    assert.equal(spec.maxReplicas, 9);
    assert.equal(spec.metrics[0]?.resource.name, "cpu");
  });

  test("hpa without a CPU request is refused", async () => {
    await assert.rejects(
      helm([
        "template",
        "sluice",
        chartDir,
        "--set",
        "worker.scaling=hpa",
        "--set",
        "worker.resources=null",
      ]),
      /requests.cpu/,
    );
  });
});

group("shutdown", () => {
  for (const timeout of [20000, 45500]) {
    test(`grace periods outlast a ${timeout} ms drain deadline and the api's preStop pause`, async () => {
      const objects = await render({
        set: [`config.SHUTDOWN_TIMEOUT_MS=${timeout}`, "api.preStopSleepSeconds=4"],
      });
      for (const program of PROGRAMS) {
        const deployment = find(objects, "Deployment", `sluice-${program}`);
        const grace = deploymentSpec(deployment).template.spec.terminationGracePeriodSeconds ?? 30;
        const preStop = program === "api" ? 4 : 0;
        assert.ok(grace * 1000 > timeout + preStop * 1000, `${program}: ${grace}s`);
      }
    });
  }

  /** The drain deadline a program's container reads: its own variable, else the ConfigMap's. */
  const drainOf = (objects: Rendered[], program: string): number => {
    const own = container(find(objects, "Deployment", `sluice-${program}`)).env?.find(
      (e) => e.name === "SHUTDOWN_TIMEOUT_MS",
    );
    const shared = (find(objects, "ConfigMap", "sluice-config").data as Record<string, string>)
      .SHUTDOWN_TIMEOUT_MS;
    return Number(own ? own.value : shared);
  };

  for (const [statement, command] of [
    [30000, 10000],
    [600000, 45000],
  ] as const) {
    test(`a worker's drain outlasts a batch statement PostgreSQL ends after ${statement} ms and ${command} ms to hand the batch back`, async () => {
      const objects = await render({
        set: [
          "config.SHUTDOWN_TIMEOUT_MS=20000",
          `config.DB_STATEMENT_TIMEOUT_MS=${statement}`,
          `config.COMMAND_TIMEOUT_MS=${command}`,
        ],
      });
      const drain = drainOf(objects, "worker");
      assert.ok(drain >= statement + command, `the worker drains for ${drain} ms`);
      const worker = deploymentSpec(find(objects, "Deployment", "sluice-worker"));
      const grace = worker.template.spec.terminationGracePeriodSeconds ?? 30;
      assert.ok(grace * 1000 > drain, `the worker's grace period: ${grace}s`);
      // The api and the controller land no batch: their drain stays the one set.
      assert.equal(drainOf(objects, "api"), 20000);
      assert.equal(drainOf(objects, "controller"), 20000);
    });
  }

  test("a worker's drain set longer than the statement's is kept", async () => {
    const objects = await render({ set: ["config.SHUTDOWN_TIMEOUT_MS=90000"] });
    assert.equal(drainOf(objects, "worker"), 90000);
  });
});

group("service accounts", () => {
  test("only the controller gets a token, and its Role allows exactly what it calls", async () => {
    const objects = await render();
    for (const program of PROGRAMS) {
      const account = find(objects, "ServiceAccount", `sluice-${program}`);
      const pod = deploymentSpec(find(objects, "Deployment", `sluice-${program}`)).template.spec;
      assert.equal(pod.serviceAccountName, `sluice-${program}`);
      const mounts = program === "controller";
      assert.equal(account.automountServiceAccountToken, mounts, program);
      assert.equal(pod.automountServiceAccountToken, mounts, program);
    }
    const role = find(objects, "Role", "sluice-controller");
    const grants = (role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[])
      .flatMap((rule) =>
        rule.apiGroups.flatMap((g) =>
          rule.resources.flatMap((r) => rule.verbs.map((v) => `${g || "core"}/${r}:${v}`)),
        ),
      )
      .sort();
    // Exactly what the controller declares it calls; its own test holds it to that list.
    const calls = KUBERNETES_PERMISSIONS.flatMap((p) =>
      p.verbs.map((v) => `${p.apiGroup || "core"}/${p.resource}:${v}`),
    ).sort();
    assert.deepEqual(grants, calls);
    const binding = find(objects, "RoleBinding", "sluice-controller");
    assert.deepEqual(binding.subjects, [
      { kind: "ServiceAccount", name: "sluice-controller", namespace: "sluice" },
    ]);
  });

  test("IRSA role annotations land on the program's ServiceAccount", async () => {
    const arn = "arn:aws:iam::123456789012:role/sluice-worker";
    const objects = await render({
      set: [`worker.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=${arn}`],
    });
    const account = find(objects, "ServiceAccount", "sluice-worker");
    assert.equal(account.metadata.annotations?.["eks.amazonaws.com/role-arn"], arn);
  });
});

group("uploads volume", () => {
  const uploadsVolume = (objects: Rendered[]) =>
    deploymentSpec(find(objects, "Deployment", "sluice-api")).template.spec.volumes?.find(
      (v) => v.name === "uploads",
    );

  test("the api mounts its uploads volume at UPLOAD_DIR with a read-only root", async () => {
    const objects = await render({ set: ["config.UPLOAD_DIR=/data/uploads"] });
    const api = container(find(objects, "Deployment", "sluice-api"));
    assert.ok(
      api.volumeMounts?.some((m) => m.name === "uploads" && m.mountPath === "/data/uploads"),
    );
    assert.equal(api.securityContext?.readOnlyRootFilesystem, true);
    assert.ok(uploadsVolume(objects)?.emptyDir);
  });

  test("a per-pod claim or an existing claim can hold the uploads", async () => {
    const ephemeral = uploadsVolume(
      await render({ set: ["api.uploads.volume=ephemeral", "api.uploads.storageClassName=gp3"] }),
    );
    assert.match(JSON.stringify(ephemeral), /"storageClassName":"gp3"/);
    const claim = uploadsVolume(
      await render({ set: ["api.uploads.volume=existingClaim", "api.uploads.existingClaim=big"] }),
    );
    assert.deepEqual(claim?.persistentVolumeClaim, { claimName: "big" });
  });

  test("the chart creates the claim when asked, with its size, class and access modes", async () => {
    assert.deepEqual(
      (await render()).filter((o) => o.kind === "PersistentVolumeClaim"),
      [],
      "none by default",
    );
    const objects = await render({
      set: [
        "api.uploads.volume=persistentVolumeClaim",
        "api.uploads.size=50Gi",
        "api.uploads.storageClassName=efs",
        "api.uploads.accessModes={ReadWriteMany}",
      ],
    });
    const claim = find(objects, "PersistentVolumeClaim", "sluice-uploads") as any;
    assert.deepEqual(claim.spec, {
      accessModes: ["ReadWriteMany"],
      storageClassName: "efs",
      resources: { requests: { storage: "50Gi" } },
    });
    assert.deepEqual(uploadsVolume(objects)?.persistentVolumeClaim, {
      claimName: "sluice-uploads",
    });
    await assert.rejects(
      helm(["template", "sluice", chartDir, "--set", "api.uploads.accessModes={ReadWriteAll}"]),
      /accessModes/,
    );
  });
});

group("helm test", () => {
  test("one pod, run by `helm test`, checks /readyz and a request with and without a key", async () => {
    const pods = (await render()).filter((o) => o.kind === "Pod");
    assert.deepEqual(pods.map(describe), ["Pod/sluice-test-api"]);
    const pod = pods[0] as any;
    assert.equal(pod.metadata.annotations["helm.sh/hook"], "test");
    assert.equal(pod.spec.restartPolicy, "Never");
    assert.equal(pod.spec.automountServiceAccountToken, false);
    const [test] = pod.spec.containers;
    assert.deepEqual(
      test.env.find((e: any) => e.name === "API_URL"),
      { name: "API_URL", value: "http://sluice-api:80" },
    );
    assert.equal(test.securityContext.readOnlyRootFilesystem, true);
    const script = test.command.at(-1) as string;
    assert.match(script, /"\/readyz"/);
    assert.match(script, /Bearer/);
  });
});

group("monitoring", () => {
  const monitoringKinds = (objects: Rendered[]) =>
    objects
      .filter(
        (o) =>
          o.kind === "ServiceMonitor" ||
          o.kind === "PrometheusRule" ||
          o.metadata.labels?.grafana_dashboard === "1",
      )
      .map(describe);

  test("off by default", async () => {
    assert.deepEqual(monitoringKinds(await render()), []);
  });

  /** The chart without the project's own rules and dashboards. */
  const bareChart = () => {
    const chart = copyChart();
    rmSync(join(chart, "rules"), { recursive: true, force: true });
    rmSync(join(chart, "dashboards"), { recursive: true, force: true });
    return chart;
  };

  test("the project's alert rules and dashboards render, and valid", async () => {
    const objects = await render({
      set: ["metrics.prometheusRule.enabled=true", "metrics.dashboards.enabled=true"],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const rule = find(objects, "PrometheusRule", "sluice");
    const alerts = (rule.spec as { groups: { rules: { alert?: string }[] }[] }).groups
      .flatMap((g) => g.rules)
      .map((r) => r.alert);
    for (const alert of [
      "UploadsStuck",
      "DeadLetterQueueNotEmpty",
      "QueueGrowingAtMaxWorkers",
      "SluiceProgramDown",
      "HighErrorRatio",
    ]) {
      assert.ok(alerts.includes(alert), `${alert} is in the PrometheusRule`);
    }
    assert.deepEqual(
      monitoringKinds(objects).filter((k) => k.startsWith("ConfigMap/")),
      ["ConfigMap/sluice-dashboard-sluice-overview", "ConfigMap/sluice-dashboard-sluice-programs"],
    );
  });

  test("with no rule or dashboard files, only the ServiceMonitor renders", async () => {
    const chart = bareChart();
    const objects = await render({
      chart,
      set: [
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboards.enabled=true",
      ],
    });
    assert.deepEqual(monitoringKinds(objects), ["ServiceMonitor/sluice"]);
  });

  test("rules/*.yaml and dashboards/*.json files become a PrometheusRule and ConfigMaps", async () => {
    const chart = bareChart();
    mkdirSync(join(chart, "rules"), { recursive: true });
    mkdirSync(join(chart, "dashboards"), { recursive: true });
    writeFileSync(
      join(chart, "rules", "uploads.yaml"),
      [
        "groups:",
        "  - name: sluice-uploads",
        "    rules:",
        "      - alert: SluiceUploadStuck",
        "        expr: sum(sluice_uploads_stuck) > 0",
        "        for: 5m",
        "        annotations:",
        '          summary: "{{ $value }} uploads made no progress"',
      ].join("\n"),
    );
    writeFileSync(join(chart, "dashboards", "Sluice Overview.json"), '{"title": "Sluice"}\n');
    const objects = await render({
      chart,
      set: ["metrics.prometheusRule.enabled=true", "metrics.dashboards.enabled=true"],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const rule = find(objects, "PrometheusRule", "sluice");
    const groups = (rule.spec as { groups: { name: string; rules: Record<string, unknown>[] }[] })
      .groups;
    assert.equal(groups[0]?.name, "sluice-uploads");
    assert.equal(
      groups[0]?.rules[0]?.annotations &&
        (groups[0].rules[0].annotations as { summary: string }).summary,
      "{{ $value }} uploads made no progress",
      "Prometheus templates pass through Helm untouched",
    );
    const dashboard = find(objects, "ConfigMap", "sluice-dashboard-sluice-overview");
    assert.equal(dashboard.metadata.labels?.grafana_dashboard, "1");
    // The file as it is, but for the uid and the title, which become the release's own.
    const { uid, ...rest } = JSON.parse(
      (dashboard.data as Record<string, string>)["Sluice Overview.json"] ?? "",
    );
    assert.match(uid, /^Sluice-Overview-[0-9a-f]{8}$/);
    assert.deepEqual(rest, { title: "Sluice (sluice/sluice)" });
  });

  test("the ServiceMonitor reaches /metrics of all three programs", async () => {
    const objects = await render({ set: ["metrics.serviceMonitor.enabled=true"] });
    const monitor = find(objects, "ServiceMonitor", "sluice");
    const spec = monitor.spec as {
      selector: { matchLabels: Record<string, string> };
      endpoints: { port: string; path: string }[];
    };
    const selected = objects.filter(
      (o) =>
        o.kind === "Service" &&
        Object.entries(spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    const components = selected.map((s) => s.metadata.labels?.["app.kubernetes.io/component"]);
    assert.deepEqual(components.sort(), ["api", "controller", "worker"]);
    for (const service of selected) {
      const ports = (service.spec as { ports: { name: string }[] }).ports.map((p) => p.name);
      assert.ok(ports.includes(spec.endpoints[0]?.port ?? ""), describe(service));
    }
    assert.equal(spec.endpoints[0]?.path, "/metrics");
  });

  test("the ServiceMonitor may live in Prometheus's namespace, with a scrape timeout and relabelings", async () => {
    const relabeling = { targetLabel: "cluster", replacement: "eu-1" };
    const dropped = { sourceLabels: ["__name__"], regex: "nodejs_.*", action: "drop" };
    const objects = await render({
      namespace: "data",
      set: [
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.namespace=monitoring",
        "metrics.serviceMonitor.scrapeTimeout=5s",
        `metrics.serviceMonitor.relabelings[0].targetLabel=${relabeling.targetLabel}`,
        `metrics.serviceMonitor.relabelings[0].replacement=${relabeling.replacement}`,
        "metrics.serviceMonitor.metricRelabelings[0].sourceLabels[0]=__name__",
        `metrics.serviceMonitor.metricRelabelings[0].regex=${dropped.regex}`,
        `metrics.serviceMonitor.metricRelabelings[0].action=${dropped.action}`,
      ],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const monitor = find(objects, "ServiceMonitor", "sluice");
    assert.equal((monitor.metadata as { namespace?: string }).namespace, "monitoring");
    const spec = monitor.spec as {
      namespaceSelector?: { matchNames?: string[] };
      endpoints: Record<string, unknown>[];
    };
    // From there it must still find the Services, which stay in the release's namespace.
    assert.deepEqual(spec.namespaceSelector, { matchNames: ["data"] });
    assert.equal(spec.endpoints[0]?.scrapeTimeout, "5s");
    assert.deepEqual(spec.endpoints[0]?.relabelings, [relabeling]);
    assert.deepEqual(spec.endpoints[0]?.metricRelabelings, [dropped]);

    // Unset, it is the release's, and the endpoint takes Prometheus's defaults.
    const plain = find(
      await render({ namespace: "data", set: ["metrics.serviceMonitor.enabled=true"] }),
      "ServiceMonitor",
      "sluice",
    );
    assert.equal((plain.metadata as { namespace?: string }).namespace, undefined);
    const endpoint = (plain.spec as { endpoints: Record<string, unknown>[] }).endpoints[0] ?? {};
    for (const field of ["scrapeTimeout", "relabelings", "metricRelabelings"]) {
      assert.equal(endpoint[field], undefined, field);
    }
  });
});

group("network policy", () => {
  test("off by default; on, one policy per program admits only its port", async () => {
    assert.equal((await render()).filter((o) => o.kind === "NetworkPolicy").length, 0);
    const objects = await render({
      set: ["networkPolicy.enabled=true", "networkPolicy.restrictEgress=true"],
    });
    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    assert.equal(policies.length, 3);
    for (const policy of policies) {
      const spec = policy.spec as { policyTypes: string[]; ingress: { ports: unknown[] }[] };
      assert.deepEqual(spec.policyTypes, ["Ingress", "Egress"]);
      assert.deepEqual(spec.ingress[0]?.ports, [{ port: "http", protocol: "TCP" }]);
    }
  });

  test("with apiFrom, the api also admits the release's helm test pod", async () => {
    const objects = await render({ files: [join(chartDir, "ci", "networkpolicy-values.yaml")] });
    const policy = find(objects, "NetworkPolicy", "sluice-api").spec as any;
    const testPod = find(objects, "Pod", "sluice-test-api");
    const peers = policy.ingress[0].from as any[];
    const admitted = peers.filter(
      (peer) =>
        peer.podSelector &&
        Object.entries(peer.podSelector.matchLabels).every(
          ([key, value]) => testPod.metadata.labels?.[key] === value,
        ),
    );
    assert.equal(admitted.length, 1, JSON.stringify(peers));
    assert.ok(peers.length > 1, "the peers of apiFrom stay");
  });

  type EgressRule = { ports: { port: number; protocol: string }[]; to?: object[] };
  const egressOf = async (set: string[]) => {
    const objects = await render({
      set: ["networkPolicy.enabled=true", "networkPolicy.restrictEgress=true", ...set],
    });
    return Object.fromEntries(
      PROGRAMS.map((program) => [
        program,
        (find(objects, "NetworkPolicy", `sluice-${program}`).spec as { egress: EgressRule[] })
          .egress,
      ]),
    ) as Record<(typeof PROGRAMS)[number], EgressRule[]>;
  };
  const ports = (rules: EgressRule[]) =>
    rules.flatMap((rule) => rule.ports.map((p) => `${p.port}/${p.protocol}`));

  test("restricted egress lets each program reach what it uses: DNS, PostgreSQL, Redis, RabbitMQ, S3, and the controller the API server", async () => {
    const egress = await egressOf([]);
    const services = ["53/UDP", "53/TCP", "5432/TCP", "6379/TCP", "5672/TCP", "443/TCP"];
    assert.deepEqual(ports(egress.api), services);
    assert.deepEqual(ports(egress.worker), services);
    assert.deepEqual(ports(egress.controller), [...services, "443/TCP", "6443/TCP"]);
    for (const rule of egress.api) assert.equal(rule.to, undefined, "any destination by default");
  });

  test("restricted egress: each service's ports and peers are configurable, null drops one, egress adds rules", async () => {
    const egress = await egressOf([
      "networkPolicy.egressTo.kubernetesApi.ports[0].port=16443",
      "networkPolicy.egressTo.kubernetesApi.ports[0].protocol=TCP",
      "networkPolicy.egressTo.s3.ports[0].port=4566",
      "networkPolicy.egressTo.s3.ports[0].protocol=TCP",
      "networkPolicy.egressTo.redis=null",
      "networkPolicy.egressTo.postgresql.to[0].ipBlock.cidr=10.1.2.0/24",
      "networkPolicy.egress[0].ports[0].port=8200",
    ]);
    assert.deepEqual(ports(egress.controller), [
      "53/UDP",
      "53/TCP",
      "5432/TCP",
      "5672/TCP",
      "4566/TCP",
      "16443/TCP",
      "8200/undefined",
    ]);
    assert.deepEqual(egress.worker[1]?.to, [{ ipBlock: { cidr: "10.1.2.0/24" } }]);
    assert.ok(!ports(egress.worker).includes("16443/TCP"), "the API server is the controller's");
    await assert.rejects(
      helm([
        "template",
        "sluice",
        chartDir,
        ...["networkPolicy.enabled=true", "networkPolicy.restrictEgress=true"].flatMap((v) => [
          "--set",
          v,
        ]),
        "--set-json",
        "networkPolicy.egressTo.s3.ports=[]",
      ]),
      /ports|minItems|minimum/,
    );
  });
});

group("pod disruption budgets", () => {
  test("the api and the worker have one; the controller does not", async () => {
    const budgets = (await render()).filter((o) => o.kind === "PodDisruptionBudget").map(describe);
    assert.deepEqual(budgets.sort(), [
      "PodDisruptionBudget/sluice-api",
      "PodDisruptionBudget/sluice-worker",
    ]);
  });
});
