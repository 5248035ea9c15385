// charts/services: the upstream charts' values and the Sluice values that point at them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { root } from "./chart.ts";

const dir = join(root, "charts", "services");
const read = (file: string) => parse(readFileSync(join(dir, file), "utf8"));

test("the Sluice values reach each release with its own credentials", () => {
  const { secret, config } = read("sluice-values.yaml");
  const rabbitmq = read("rabbitmq.yaml");
  const postgresql = read("postgresql.yaml");
  const redis = read("redis.yaml");
  const localstack = read("localstack.yaml");

  const broker = new URL(secret.env.RABBITMQ_URL);
  assert.equal(broker.hostname, rabbitmq.fullnameOverride);
  assert.equal(broker.username, rabbitmq.auth.username);
  assert.equal(broker.password, rabbitmq.auth.password);

  const database = new URL(secret.env.DATABASE_URL);
  assert.equal(database.hostname, postgresql.fullnameOverride);
  assert.equal(database.username, postgresql.auth.username);
  assert.equal(database.password, postgresql.auth.password);
  assert.equal(database.pathname, `/${postgresql.auth.database}`);

  // Bitnami's standalone redis names its Service <fullname>-master.
  assert.equal(redis.architecture, "standalone");
  assert.equal(new URL(secret.env.REDIS_URL).hostname, `${redis.fullnameOverride}-master`);
  assert.equal(redis.auth.enabled, false, "the URL carries no password");

  assert.equal(new URL(config.AWS_ENDPOINT).hostname, localstack.fullnameOverride);
  assert.match(localstack.startupScriptContent, /awslocal s3 mb s3:\/\/sluice\b/);
});

test("helmfile and install.sh install the same releases from the same values", () => {
  const helmfile = read("helmfile.yaml");
  const script = readFileSync(join(dir, "install.sh"), "utf8");
  for (const release of helmfile.releases) {
    assert.deepEqual(release.values, [`${release.name}.yaml`]);
    assert.match(script, new RegExp(`^install ${release.name} \\S+/${release.name}$`, "m"));
  }
});
