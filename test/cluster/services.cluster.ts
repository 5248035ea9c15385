// The services alongside Sluice inside the cluster, installed as k8s/README.md tells users
// (kubectl apply -k of k8s/ through an overlay that swaps the images, here for ones made
// from Debian's packages since nothing can be pulled), then Sluice installed against them
// with values-dev.yaml as that README says, and an upload landing once in the PostgreSQL and
// the S3 that run in the cluster. And charts/services' objects for the operators, which
// cannot run here (install.sh fetches their charts and images), judged by the API server
// under the operators' own CRDs.
import assert from "node:assert/strict";
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import pg from "pg";
import { serviceOperatorCrds } from "../../scripts/cluster/build.ts";
import { STATE_DIR } from "../../scripts/cluster/paths.ts";
import { importServicesImages, SERVICE_IMAGES } from "../../scripts/cluster/services-images.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import { getJson, waitFor } from "../support/stack.ts";
import {
  CHART,
  coverageValues,
  createNamespace,
  deleteNamespace,
  helm,
  kubectl,
  kubectlJson,
  kubectlResult,
  nodeVolume,
  RELEASE,
} from "./cluster.ts";
import { apiUrl, IMAGE, missingImage, PROGRAMS, rolledOut } from "./sluice-release.ts";

const ROWS = 100_000;
const K8S_DIR = join(import.meta.dirname, "..", "..", "k8s");
const OPERATOR_OBJECTS = join(import.meta.dirname, "..", "..", "charts", "services");
// The claims of k8s/'s StatefulSets, and the UID their images run as.
const CLAIMS = ["data-postgresql-0", "data-rabbitmq-0"] as const;
const SERVICE_UID = 999;
// k8s/services-credentials.yaml's, which values-dev.yaml's URLs carry too.
const DEVELOPMENT_CREDENTIALS = "sluice:sluice";

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

const skip = await missingImage();

describe("services alongside, in the cluster", { skip }, () => {
  let namespace: string;
  let overlay: string;
  const ns = () => ["--namespace", namespace];
  const volume = (claim: string) => `${namespace}-${claim}`;
  const volumeDir = (claim: string) => join(STATE_DIR, "volumes", volume(claim));
  const serviceIp = async (name: string) =>
    (await kubectlJson([...ns(), "get", "service", name])).spec.clusterIP as string;

  before(
    async () => {
      await importServicesImages();
      namespace = await createNamespace("sluice-services");
      // What an administrator provides where no StorageClass makes volumes: one directory
      // of the node per claim, owned by the UID the service runs as.
      for (const claim of CLAIMS) {
        mkdirSync(volumeDir(claim), { recursive: true, mode: 0o700 });
        chownSync(volumeDir(claim), SERVICE_UID, SERVICE_UID);
        await nodeVolume(
          volume(claim),
          volumeDir(claim),
          { namespace, name: claim },
          "ReadWriteOnce",
        );
      }
      // The overlay of k8s/README.md: k8s/ as it is, its images swapped by name.
      overlay = mkdtempSync(join(tmpdir(), "sluice-services-overlay-"));
      writeFileSync(
        join(overlay, "kustomization.yaml"),
        JSON.stringify({
          apiVersion: "kustomize.config.k8s.io/v1beta1",
          kind: "Kustomization",
          resources: [relative(overlay, K8S_DIR)],
          images: Object.values(SERVICE_IMAGES).map(({ upstream, local }) => {
            const colon = local.lastIndexOf(":");
            return {
              name: upstream,
              newName: local.slice(0, colon),
              newTag: local.slice(colon + 1),
            };
          }),
        }),
      );
    },
    { timeout: 1_800_000 },
  );
  after(async () => {
    await deleteNamespace(namespace);
    for (const claim of CLAIMS) {
      await kubectl([
        "delete",
        "persistentvolume",
        volume(claim),
        "--wait=false",
        "--ignore-not-found",
      ]);
      rmSync(volumeDir(claim), { recursive: true, force: true });
    }
    if (overlay) rmSync(overlay, { recursive: true, force: true });
  });

  test("k8s/ applied with kubectl apply -k under the restricted standard: every service Ready", async (t) => {
    const started = Date.now();
    await kubectl([
      "label",
      "namespace",
      namespace,
      "pod-security.kubernetes.io/enforce=restricted",
    ]);
    await kubectl([...ns(), "apply", "-k", overlay]);
    for (const workload of [
      "statefulset/postgresql",
      "statefulset/rabbitmq",
      "deployment/redis",
      "deployment/s3",
    ]) {
      await kubectl([...ns(), "rollout", "status", workload, "--timeout=300s"]);
    }
    const pods = (await kubectlJson([...ns(), "get", "pods"])).items as any[];
    const images = pods.map((p) => p.spec.containers[0].image as string).sort();
    assert.deepEqual(
      images,
      Object.values(SERVICE_IMAGES)
        .map((i) => i.local)
        .sort(),
    );
    t.diagnostic(
      `4 services Ready ${seconds(started)} after kubectl apply -k (images ${images.join(", ")})`,
    );
  });

  test(`Sluice installed against them lands ${ROWS.toLocaleString("en")} rows exactly once`, async (t) => {
    // k8s/README.md's command, with the image imported rather than pulled.
    await helm([
      "install",
      RELEASE,
      CHART,
      ...ns(),
      ...(await coverageValues(namespace)),
      "--values",
      join(CHART, "values-dev.yaml"),
      "--set",
      "debug.enabled=false",
      "--set",
      `image.repository=${IMAGE.repository}`,
      "--set",
      `image.tag=${IMAGE.tag}`,
      "--set",
      "image.pullPolicy=Never",
    ]);
    for (const program of PROGRAMS) await rolledOut(namespace, program);

    const started = Date.now();
    const url = await apiUrl(namespace);
    const accepted = await getJson(`${url}/uploads`, {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: sampleCsv(ROWS).csv,
    });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const id = accepted.body.id as string;
    const done = await waitFor(
      "the upload to end",
      async () => {
        const view = await getJson(`${url}/uploads/${id}`);
        return ["completed", "failed"].includes(view.body.status) && view.body;
      },
      300_000,
    );
    assert.equal(done.status, "completed", JSON.stringify(done));

    // Counted where they landed: the cluster's PostgreSQL and S3, through their Services.
    const database = new pg.Client({
      connectionString: `postgres://${DEVELOPMENT_CREDENTIALS}@${await serviceIp("postgresql")}:5432/sluice`,
    });
    await database.connect();
    const { rows } = await database
      .query(
        "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
        [id],
      )
      .finally(() => database.end());
    assert.deepEqual(rows[0], { n: ROWS, distinct_rows: ROWS });
    const s3 = new S3Client({
      region: "us-east-1",
      endpoint: `http://${await serviceIp("s3")}`,
      forcePathStyle: true,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: "sluice", Prefix: `uploads/${id}/` }),
    );
    s3.destroy();
    assert.equal(listed.KeyCount, done.batches.total);
    t.diagnostic(
      `${rows[0].n} rows once in the cluster's PostgreSQL, ${listed.KeyCount} batches in its S3, ${seconds(started)} from POST to completed`,
    );
  });
});

describe("charts/services' objects under their operators' CRDs", () => {
  let namespace: string;
  const KINDS = ["clusters.postgresql.cnpg.io", "rabbitmqclusters.rabbitmq.com"];
  /** A server-side dry run with strict field validation: a field the CRD lacks is refused. */
  const judged = (objects: string) =>
    kubectlResult(
      [
        ...["--namespace", namespace, "apply", "--dry-run=server", "--validate=strict"],
        ...["-f", "-"],
      ],
      objects,
    );
  before(async () => {
    namespace = await createNamespace("sluice-operators");
    // As the operators' installs apply them; no operator runs, so nothing acts on the objects.
    for (const crd of serviceOperatorCrds()) await kubectl(["apply", "--server-side", "-f", crd]);
    await kubectl([
      ...["wait", "--for=condition=Established", "--timeout=60s"],
      ...KINDS.map((kind) => `crd/${kind}`),
    ]);
  });
  after(() => deleteNamespace(namespace));

  test("postgresql.yaml's Cluster and rabbitmq.yaml's RabbitmqCluster are accepted as they are", async (t) => {
    const accepted = [];
    for (const file of ["postgresql.yaml", "rabbitmq.yaml"]) {
      const result = await judged(readFileSync(join(OPERATOR_OBJECTS, file), "utf8"));
      assert.equal(result.code, 0, `${file}: ${result.stderr}`);
      accepted.push(result.stdout.trim());
    }
    t.diagnostic(accepted.join("; "));
  });

  test("a misspelt field, or a Cluster of no instances, is refused", async (t) => {
    const cluster = readFileSync(join(OPERATOR_OBJECTS, "postgresql.yaml"), "utf8");
    const misspelt = await judged(cluster.replace("imageName:", "imagename:"));
    assert.notEqual(misspelt.code, 0, misspelt.stdout);
    assert.match(misspelt.stderr, /unknown field "spec.imagename"/);
    const none = await judged(cluster.replace("instances: 1", "instances: 0"));
    assert.notEqual(none.code, 0, none.stdout);
    assert.match(none.stderr, /spec.instances/);
    t.diagnostic(`${misspelt.stderr.trim()}; ${none.stderr.trim()}`);
  });
});
