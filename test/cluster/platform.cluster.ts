// Sluice as a platform team installs it beside operators, as docs/kubernetes.md tells: the
// credentials read in place from the Secrets operators write (CloudNativePG's app and
// superuser Secrets, whose key `uri` holds a URL; the RabbitMQ Cluster Operator's default
// user, which holds a URL's parts), the schema migrated by the chart's hook Job as the
// tables' owner while the programs hold the documented DML rights only; and beside it a
// second release on the same RabbitMQ and Redis, whose queues and keys are its own by default.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { queueStates } from "../support/broker-queues.ts";
import { DOCUMENTED_PASSWORD, documentedGrants } from "../support/database-users.ts";
import { adminQuery } from "../support/test-env.ts";
import { createNamespace, deleteNamespace, kubectl, kubectlJson, RELEASE } from "./cluster.ts";
import {
  apiUrl,
  installSluice,
  missingImage,
  type Outside,
  PROGRAMS,
  rolledOut,
  servicesOutside,
  uploadLands,
} from "./sluice-release.ts";

const ROWS = 20_000;
const skip = await missingImage();

type Release = { namespace: string; outside: Outside; url: string; database: string };

/** A Secret as an operator writes it, in the release's namespace. */
const operatorSecret = (namespace: string, name: string, data: Record<string, string>) =>
  kubectl([
    "--namespace",
    namespace,
    "create",
    "secret",
    "generic",
    name,
    ...Object.entries(data).map(([key, value]) => `--from-literal=${key}=${value}`),
  ]);

/** A namespace with this machine's services behind Services, its world named as the chart would. */
async function releaseWorld(prefix: string) {
  const namespace = await createNamespace(prefix);
  // The chart's default SLUICE_NAMESPACE, so that the world's clean-up removes its queues and keys.
  const outside = await servicesOutside(namespace, { SLUICE_NAMESPACE: `${namespace}-${RELEASE}` });
  const database = new URL(outside.env.env.DATABASE_URL as string).pathname.slice(1);
  return { namespace, outside, database };
}

describe("a platform team's install", { skip }, () => {
  const role = `sluice_app_${randomUUID().slice(0, 8)}`;
  let platform: Release;
  let second: Release;
  // Each world made, cleaned up after however far the set-up went.
  const worlds: Array<{ namespace: string; outside: Outside }> = [];
  before(async () => {
    const world = await releaseWorld("sluice-platform");
    worlds.push(world);
    const { namespace, database } = world;
    // The programs' user, made by the tables' owner as the docs say, before any table exists.
    await world.outside.env.sql.query(documentedGrants(database, role));
    const url = (user: string) => `postgres://${user}@postgresql:5432/${database}`;
    await operatorSecret(namespace, "pg-app", {
      username: role,
      password: DOCUMENTED_PASSWORD,
      dbname: database,
      uri: url(`${role}:${DOCUMENTED_PASSWORD}`),
    });
    await operatorSecret(namespace, "pg-superuser", { username: "postgres", uri: url("postgres") });
    await operatorSecret(namespace, "broker-default-user", {
      username: "guest",
      password: "guest",
      host: "rabbitmq",
      port: "5672",
    });
    await installSluice(namespace, world.outside, {
      // What the release's own Secret holds under those names must not be what is read.
      credentials: {
        DATABASE_URL: "postgres://nobody@unused.invalid:5432/none",
        RABBITMQ_URL: "amqp://nobody:none@unused.invalid:5672",
      },
      set: [
        "secret.keyRefs.DATABASE_URL.name=pg-app",
        "secret.keyRefs.DATABASE_URL.key=uri",
        "secret.urlFrom.RABBITMQ_URL.name=broker-default-user",
        "secret.urlFrom.RABBITMQ_URL.scheme=amqp",
        "migrations.enabled=true",
        "migrations.existingSecret=pg-superuser",
        "migrations.secretKey=uri",
      ],
      chartNamespace: true,
    });
    const other = await releaseWorld("sluice-second");
    worlds.push(other);
    await installSluice(other.namespace, other.outside, { chartNamespace: true });
    for (const program of PROGRAMS) {
      await rolledOut(namespace, program);
      await rolledOut(other.namespace, program);
    }
    platform = { ...world, url: await apiUrl(namespace) };
    second = { ...other, url: await apiUrl(other.namespace) };
  });
  after(async () => {
    for (const world of worlds) {
      await deleteNamespace(world.namespace);
      await world.outside.close();
    }
    // Its grants went with the database.
    await adminQuery(`drop role if exists ${role}`);
  });

  test("operators' Secrets read in place, the schema migrated by the hook Job as its owner: an upload lands as the DML user", async (t) => {
    const { namespace, outside, database } = platform;
    const config = (
      await kubectlJson(["--namespace", namespace, "get", "configmap", `${RELEASE}-config`])
    ).data;
    assert.equal(config.MIGRATE_AT_START, "false");
    const id = await uploadLands(platform.url, outside, ROWS);
    const sql = async (text: string, values: unknown[] = []) =>
      (await outside.env.sql.query(text, values)).rows[0];
    const { owner } = await sql(
      "select tableowner as owner from pg_tables where schemaname = 'public' and tablename = 'upload_rows'",
    );
    assert.equal(owner, "postgres", "the Job migrated as pg-superuser's user");
    const { sessions } = await sql(
      "select count(*)::int as sessions from pg_stat_activity where datname = $1 and usename = $2",
      [database, role],
    );
    assert.ok(sessions > 0, `no session of ${role}`);
    const rights = await sql(
      "select has_schema_privilege($1, 'public', 'CREATE') as create_tables, has_database_privilege($1, $2, 'CREATE') as create_schemas",
      [role, database],
    );
    assert.deepEqual(rights, { create_tables: false, create_schemas: false });
    t.diagnostic(
      `upload ${id}: ${ROWS} rows once; tables owned by postgres (pg-superuser's uri, the hook Job), ${sessions} session(s) as ${role} (pg-app's uri), RabbitMQ from broker-default-user's parts; MIGRATE_AT_START=false`,
    );
  });

  test("a second release on the same RabbitMQ and Redis lands its own uploads, its queues apart", async (t) => {
    const [first, other] = await Promise.all(
      [platform, second].map((release) => uploadLands(release.url, release.outside, ROWS)),
    );
    const prefixes = [];
    for (const release of [platform, second]) {
      const { data } = await kubectlJson([
        "--namespace",
        release.namespace,
        "get",
        "configmap",
        `${RELEASE}-config`,
      ]);
      assert.equal(data.SLUICE_NAMESPACE, `${release.namespace}-${RELEASE}`);
      const queues = queueStates(data.SLUICE_NAMESPACE).map((q) => q.name);
      assert.ok(queues.includes(queueNames(data.SLUICE_NAMESPACE).batches), queues.join(", "));
      prefixes.push(data.SLUICE_NAMESPACE);
    }
    t.diagnostic(
      `${ROWS} rows once in each release's database (uploads ${first}, ${other}); queues ${prefixes.map((p) => `${p}.batches`).join(" and ")}`,
    );
  });
});
