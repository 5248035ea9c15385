// Sluice's pods on the local cluster, from the image, installed with helm into a namespace
// enforcing the restricted standard, with PostgreSQL, Redis, RabbitMQ and S3 outside the
// cluster behind Services of the namespace; then an upload through the api's Service.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { ensureBucket } from "../../src/core/storage/s3.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import { getJson, type TestEnv, testEnv, waitFor } from "../support/stack.ts";
import {
  CHART,
  createNamespace,
  deleteNamespace,
  ensureSluiceImage,
  forwardFromNode,
  installChart,
  kubectl,
  kubectlJson,
  kubectlResult,
  RELEASE,
  serviceOutside,
} from "./cluster.ts";

const { version } = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
);
const IMAGE = { repository: "sluice", tag: version as string };
const PROGRAMS = ["api", "worker", "controller"] as const;
const ROWS = 100_000;

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

const missingImage = await ensureSluiceImage(`${IMAGE.repository}:${IMAGE.tag}`);
// CI builds the image before these checks: there a missing image is a failure, not a skip.
if (missingImage && process.env.CI) throw new Error(missingImage);

describe("Sluice's pods", { skip: missingImage }, () => {
  let namespace: string;
  let env: TestEnv;
  const forwards: Array<{ close(): Promise<void> }> = [];
  const ns = () => ["--namespace", namespace];
  before(async () => {
    namespace = await createNamespace("sluice-pods");
    env = await testEnv();
    // In production the programs create neither their database nor their bucket.
    const admin = new pg.Client({
      connectionString: "postgres://postgres@127.0.0.1:5432/postgres",
    });
    await admin.connect();
    await admin.query(
      `create database "${new URL(env.env.DATABASE_URL as string).pathname.slice(1)}"`,
    );
    await admin.end();
    await ensureBucket(env.s3, env.config.s3.bucket);
    const s3Port = Number(new URL(env.env.AWS_ENDPOINT as string).port);
    for (const [name, port, target] of [
      ["postgresql", 5432, 5432],
      ["redis", 6379, 6379],
      ["rabbitmq", 5672, 5672],
      ["s3", 80, s3Port],
    ] as const) {
      const forward = await forwardFromNode({ host: "127.0.0.1", port: target });
      forwards.push(forward);
      await serviceOutside(namespace, name, port, forward.port);
    }
  });
  after(async () => {
    await deleteNamespace(namespace);
    for (const forward of forwards) await forward.close();
    await env?.cleanup();
  });

  const pods = async (program: string) =>
    (
      await kubectlJson([...ns(), "get", "pods", "-l", `app.kubernetes.io/component=${program}`])
    ).items.filter((p: any) => !p.metadata.deletionTimestamp);
  const exec = (pod: string, script: string) =>
    kubectl([...ns(), "exec", pod, "--", "node", "-e", script]);

  test("every pod Ready under the restricted standard", async (t) => {
    const started = Date.now();
    const database = new URL(env.env.DATABASE_URL as string).pathname.slice(1);
    await installChart(
      namespace,
      {
        DATABASE_URL: `postgres://postgres@postgresql:5432/${database}`,
        REDIS_URL: "redis://redis:6379",
        RABBITMQ_URL: "amqp://guest:guest@rabbitmq:5672",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        API_KEYS: "acme:k3y",
      },
      [
        `image.repository=${IMAGE.repository}`,
        `image.tag=${IMAGE.tag}`,
        "image.pullPolicy=Never",
        `config.SLUICE_NAMESPACE=${env.config.namespace}`,
        `config.S3_BUCKET=${env.config.s3.bucket}`,
        "config.AWS_ENDPOINT=http://s3",
        "config.STUCK_AFTER_SECONDS=5",
        "config.CONTROLLER_INTERVAL_SECONDS=1",
      ],
    );
    for (const program of PROGRAMS) {
      await kubectl([
        ...ns(),
        "rollout",
        "status",
        `deployment/${RELEASE}-${program}`,
        "--timeout=120s",
      ]).catch(async (err: Error) => {
        // What the programs printed says why they are not Ready.
        const [pod] = await pods(program);
        const logs = await kubectlResult([
          ...ns(),
          "logs",
          pod.metadata.name,
          "--previous",
          "--tail=20",
        ]);
        const now = await kubectlResult([...ns(), "logs", pod.metadata.name, "--tail=20"]);
        throw new Error(`${err.message}\n${logs.stdout}${logs.stderr}\n${now.stdout}`);
      });
    }
    const ready = [];
    for (const program of PROGRAMS) {
      for (const pod of await pods(program)) {
        const conditions = pod.status.conditions as Array<{ type: string; status: string }>;
        assert.ok(
          conditions.some((c) => c.type === "Ready" && c.status === "True"),
          pod.metadata.name,
        );
        ready.push(program);
      }
    }
    assert.deepEqual(ready, ["api", "api", "worker", "worker", "controller"]);
    t.diagnostic(`${ready.length} pods Ready ${seconds(started)} after helm install (${CHART})`);
  });

  test("each program runs as UID 1000 on a read-only root filesystem", async (t) => {
    const seen = [];
    for (const program of PROGRAMS) {
      const [pod] = await pods(program);
      const out = await exec(
        pod.metadata.name,
        "let code='written';try{require('fs').writeFileSync('/probe','x')}catch(e){code=e.code}console.log(process.getuid(),process.getgid(),code)",
      );
      assert.equal(out.trim(), "1000 1000 EROFS", program);
      seen.push(`${program}: ${out.trim()}`);
    }
    t.diagnostic(seen.join(", "));
  });

  test("cluster DNS resolves rabbitmq.<namespace>.svc to its Service", async (t) => {
    const [pod] = await pods("api");
    const name = `rabbitmq.${namespace}.svc`;
    const address = (
      await exec(
        pod.metadata.name,
        `require('dns').lookup('${name}',(e,a)=>{if(e)throw e;console.log(a)})`,
      )
    ).trim();
    const service = await kubectlJson([...ns(), "get", "service", "rabbitmq"]);
    assert.equal(address, service.spec.clusterIP);
    t.diagnostic(`${name} -> ${address}`);
  });

  test("the controller's pod logs in with its projected token and holds its Lease", async (t) => {
    const [pod] = await pods("controller");
    const lease = await waitFor("the controller's Lease", async () => {
      const found = await kubectlJson([...ns(), "get", "leases"]);
      return found.items.find((l: any) => l.spec.holderIdentity === pod.metadata.name);
    });
    assert.equal(lease.metadata.name, `${env.config.namespace}-controller`);
    t.diagnostic(`Lease ${lease.metadata.name} held by ${pod.metadata.name}`);
  });

  test(`an upload of ${ROWS.toLocaleString("en")} rows through the api's Service lands exactly once`, async (t) => {
    const service = await kubectlJson([...ns(), "get", "service", `${RELEASE}-api`]);
    const url = `http://${service.spec.clusterIP}:${service.spec.ports[0].port}`;
    const started = Date.now();
    const accepted = await getJson(`${url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv", authorization: "Bearer k3y" },
      body: sampleCsv(ROWS).csv,
    });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const id = accepted.body.id as string;
    const done = await waitFor(
      "the upload to complete",
      async () => {
        const view = await getJson(`${url}/uploads/${id}`, {
          headers: { authorization: "Bearer k3y" },
        });
        return ["completed", "failed"].includes(view.body.status) && view.body;
      },
      300_000,
    );
    assert.equal(done.status, "completed", JSON.stringify(done));
    const { rows } = await env.sql.query(
      "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
      [id],
    );
    assert.deepEqual(rows[0], { n: ROWS, distinct_rows: ROWS });
    t.diagnostic(`${ROWS} rows, 0 lost, 0 duplicated, completed in ${seconds(started)} via ${url}`);
  });
});
