// charts/services: the services alongside Sluice from maintained, pinned sources, and the
// Sluice values that read the Secrets their operators write.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { VERSIONS } from "../../scripts/cluster/versions.ts";
import { loadConfig } from "../../src/core/config.ts";
import { container, parseYamlStream, type Rendered, render, root } from "./chart.ts";
import { pinnedImage, pinnedVersion } from "./pinned.ts";

const dir = join(root, "charts", "services");
const text = (file: string) => readFileSync(join(dir, file), "utf8");
const objects = (file: string) => parseYamlStream(text(file)) as Rendered[];
const script = text("install.sh");

/** The value of `NAME=value` in install.sh. */
function variable(name: string): string {
  const found = new RegExp(`^${name}=(\\S+)$`, "m").exec(script)?.[1];
  assert.ok(found, `install.sh sets no ${name}`);
  return found;
}

test("install.sh installs every chart and operator at a pinned version", () => {
  // No Bitnami chart or image: its free catalog left docker.io/bitnami in August 2025.
  assert.doesNotMatch(script, /bitnami/i);
  const installs = script
    .split("\n")
    .filter((line) => /^\s*helm (upgrade --install|install)\b/.test(line));
  assert.ok(installs.length >= 2, "install.sh installs the operators' charts with helm");
  for (const line of installs) assert.match(line, /--version "\$\w+_VERSION"/, line);
  for (const name of ["CNPG_CHART_VERSION", "RABBITMQ_OPERATOR_VERSION", "VALKEY_CHART_VERSION"]) {
    assert.ok(pinnedVersion(variable(name)), `${name}=${variable(name)} is not a release`);
  }
  // The RabbitMQ Cluster Operator ships as one manifest per release, not as a chart.
  assert.match(
    script,
    /https:\/\/github\.com\/rabbitmq\/cluster-operator\/releases\/download\/v\$\{RABBITMQ_OPERATOR_VERSION\}\/cluster-operator\.yml/,
  );
  assert.doesNotMatch(script, /releases\/latest/);
  // The cluster's checks judge rabbitmq.yaml by the CRD of the operator install.sh installs.
  assert.equal(variable("RABBITMQ_OPERATOR_VERSION"), VERSIONS.rabbitmqClusterOperator);
});

test("every image of charts/services is pinned to a release", () => {
  const images: string[] = [];
  const cluster = objects("postgresql.yaml").find((o) => o.kind === "Cluster");
  assert.ok(cluster, "postgresql.yaml holds a CloudNativePG Cluster");
  images.push((cluster.spec as { imageName: string }).imageName);
  const rabbitmq = objects("rabbitmq.yaml").find((o) => o.kind === "RabbitmqCluster");
  assert.ok(rabbitmq, "rabbitmq.yaml holds a RabbitmqCluster");
  images.push((rabbitmq.spec as { image: string }).image);
  const valkey = parse(text("valkey.yaml"));
  images.push(`${valkey.image.repository}:${valkey.image.tag}`);
  assert.equal(images.length, 3);
  for (const image of images) assert.ok(pinnedImage(image), `${image} is not pinned`);
});

test("the operators' objects are what Sluice's values read", async () => {
  const cluster = objects("postgresql.yaml").find((o) => o.kind === "Cluster") as Rendered;
  assert.equal(cluster.apiVersion, "postgresql.cnpg.io/v1");
  const initdb = (cluster.spec as { bootstrap: { initdb: { database: string; owner: string } } })
    .bootstrap.initdb;
  const rabbitmq = objects("rabbitmq.yaml").find((o) => o.kind === "RabbitmqCluster") as Rendered;
  assert.equal(rabbitmq.apiVersion, "rabbitmq.com/v1beta1");
  // S3 for development is k8s/s3.yaml, which install.sh applies too.
  assert.match(script, /-f "\$here\/\.\.\/\.\.\/k8s\/s3\.yaml"/);
  const s3 = parseYamlStream(readFileSync(join(root, "k8s", "s3.yaml"), "utf8")).find(
    (o) => o.kind === "Service",
  ) as Rendered;

  const values = join(dir, "sluice-values.yaml");
  const rendered = await render({ files: [values], namespace: "sluice" });
  const api = rendered.find((o) => o.kind === "Deployment" && o.metadata.name === "sluice-api");
  assert.ok(api);
  const env = container(api).env ?? [];

  // CloudNativePG writes <cluster>-app with the whole URL under `uri`.
  assert.deepEqual(env.find((e) => e.name === "DATABASE_URL")?.valueFrom, {
    secretKeyRef: { name: `${cluster.metadata.name}-app`, key: "uri", optional: true },
  });
  // The RabbitMQ Cluster Operator writes <cluster>-default-user with the URL's parts only.
  const brokerSecret = `${rabbitmq.metadata.name}-default-user`;
  const refs = env.flatMap((e) => {
    const ref = e.valueFrom?.secretKeyRef as { name: string; key: string } | undefined;
    return ref ? [ref] : [];
  });
  assert.deepEqual(
    refs
      .filter((r) => r.name === brokerSecret)
      .map((r) => r.key)
      .sort(),
    ["host", "password", "port", "username"],
  );

  // What the programs then see, with the Secrets as the operators write them.
  const secrets: Record<string, Record<string, string>> = {
    [`${cluster.metadata.name}-app`]: {
      uri: `postgresql://${initdb.owner}:Zx9-_pw@${cluster.metadata.name}-rw.sluice:5432/${initdb.database}`,
    },
    [brokerSecret]: {
      username: "default_user_e2FyZ3VtZW50",
      password: "cGFzc3dvcmQtb2YtMjQtYnl0ZXMh",
      host: `${rabbitmq.metadata.name}.sluice.svc`,
      port: "5672",
    },
    "sluice-credentials": Object.fromEntries(
      Object.entries(
        (rendered.find((o) => o.kind === "Secret")?.stringData ?? {}) as Record<string, string>,
      ),
    ),
  };
  const seen = containerEnvironment(env, secrets);
  const config = loadConfig({ ...seen, NODE_ENV: "production", ...configMap(rendered) });
  assert.equal(new URL(config.databaseUrl).hostname, `${cluster.metadata.name}-rw.sluice`);
  const broker = new URL(config.rabbitmqUrl);
  assert.equal(broker.hostname, `${rabbitmq.metadata.name}.sluice.svc`);
  assert.equal(broker.username, "default_user_e2FyZ3VtZW50");
  assert.equal(broker.password, "cGFzc3dvcmQtb2YtMjQtYnl0ZXMh");
  assert.equal(broker.port, "5672");
  // The Valkey chart's Service is named after its release, as install.sh names it.
  assert.equal(new URL(config.redisUrl).hostname, variable("VALKEY_RELEASE"));
  assert.equal(new URL(config.s3.endpoint ?? "").hostname, s3.metadata.name);
});

/** The rendered ConfigMap's settings. */
function configMap(rendered: Rendered[]): Record<string, string> {
  return rendered.find((o) => o.kind === "ConfigMap" && o.metadata.name === "sluice-config")
    ?.data as Record<string, string>;
}

type EnvVar = { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> };

/**
 * A container's variables as the kubelet resolves them: each secretKeyRef read from the given
 * Secrets, and `$(NAME)` in a value replaced by a variable defined before it.
 */
function containerEnvironment(
  env: EnvVar[],
  secrets: Record<string, Record<string, string>>,
): Record<string, string> {
  const resolved: Record<string, string> = {};
  for (const variable of env) {
    const ref = variable.valueFrom?.secretKeyRef as { name: string; key: string } | undefined;
    if (ref) {
      const value = secrets[ref.name]?.[ref.key];
      if (value !== undefined) resolved[variable.name] = value;
    } else if (variable.value !== undefined) {
      resolved[variable.name] = variable.value.replace(
        /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
        (whole, name: string) => resolved[name] ?? whole,
      );
    }
  }
  return resolved;
}

test("secret.urlFrom needs the Secret and the scheme, and leaves DATABASE_URL to keyRefs", async () => {
  await assert.rejects(
    render({ set: ["secret.urlFrom.RABBITMQ_URL.name=mq-default-user"] }),
    /scheme/,
  );
  // The migrations Job reads DATABASE_URL through keyRefs only.
  await assert.rejects(
    render({
      set: ["secret.urlFrom.DATABASE_URL.name=db", "secret.urlFrom.DATABASE_URL.scheme=postgres"],
    }),
    /DATABASE_URL/,
  );
});
