// Sluice's pods on the local cluster, from the image, installed with helm and the in-cluster
// values (charts/sluice/ci/in-cluster-values.yaml) into a namespace enforcing the restricted
// standard, with PostgreSQL, Redis, RabbitMQ and S3 outside the cluster behind Services of
// the namespace named as those values expect; then uploads through the api's Service while
// the workers are scaled, the controller reports, the Deployments restart and helm upgrades
// and rolls back. One install serves every check, in order.
import assert from "node:assert/strict";
import { chownSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import amqp from "amqplib";
import { STATE_DIR } from "../../scripts/cluster/paths.ts";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { queueStates } from "../support/broker-queues.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import { holdAllLanding, holdLanding } from "../support/landing-holds.ts";
import { getJson, metricSample, type TestEnv, waitFor } from "../support/stack.ts";
import {
  CHART,
  containerEnds,
  createNamespace,
  deleteNamespace,
  helm,
  keepPodsAfterDeletion,
  kubectl,
  kubectlJson,
  kubectlResult,
  nodeVolume,
  RELEASE,
} from "./cluster.ts";
import {
  API_KEY,
  apiUrl as apiUrlOf,
  assertRecovered,
  assertStuckForWorkers,
  installSluice,
  missingImage,
  type Outside,
  PROGRAMS,
  type Program,
  podsOf,
  postUpload,
  rolledOut as rolledOutIn,
  servicesOutside,
  uploadEvent,
  uploadEvents,
} from "./sluice-release.ts";

const ROWS = 100_000;
// Publishing keeps at most this many batches ahead of landing.
const IN_FLIGHT = 40;
// The chart's count of workers, which the checks that scale them restore.
const WORKERS = 2;
const IN_CLUSTER_VALUES = join(CHART, "ci", "in-cluster-values.yaml");
const authorized = { authorization: `Bearer ${API_KEY}` };
const API_PORT = 3000;
const WORKER_METRICS_PORT = 9464;

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

const missing = await missingImage();

describe("Sluice's pods", { skip: missing }, () => {
  let namespace: string;
  let outside: Outside;
  let env: TestEnv;
  let apiUrl: string;
  let volumeDir: string;
  const ns = () => ["--namespace", namespace];
  const persistentVolume = () => `${namespace}-uploads`;
  before(async () => {
    namespace = await createNamespace("sluice-pods");
    outside = await servicesOutside(namespace);
    env = outside.env;
    // The volume an administrator provides for the claim the chart makes: a directory of
    // the node, owned by the programs' UID, reserved for this namespace's claim.
    volumeDir = join(STATE_DIR, "volumes", persistentVolume());
    mkdirSync(volumeDir, { recursive: true, mode: 0o770 });
    chownSync(volumeDir, 1000, 1000);
    await nodeVolume(
      persistentVolume(),
      volumeDir,
      { namespace, name: `${RELEASE}-uploads` },
      "ReadWriteMany",
    );
  });
  after(async () => {
    await deleteNamespace(namespace);
    await kubectl(["delete", "persistentvolume", persistentVolume(), "--wait=false"]);
    rmSync(volumeDir, { recursive: true, force: true });
    await outside?.close();
  });

  const pods = (program: Program, options?: { terminating?: boolean }) =>
    podsOf(namespace, program, options);
  const isReady = (pod: any) =>
    (pod.status.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True");
  const exec = (pod: string, script: string) =>
    kubectl([...ns(), "exec", pod, "--", "node", "-e", script]);
  const rolledOut = (program: Program) => rolledOutIn(namespace, program);
  const scaleWorkers = (replicas: number) =>
    kubectl([...ns(), "scale", `deployment/${RELEASE}-worker`, `--replicas=${replicas}`]);

  async function startUpload(rows: number): Promise<string> {
    const accepted = await postUpload(apiUrl, sampleCsv(rows).csv);
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    return accepted.body.id as string;
  }
  const view = async (id: string) =>
    (await getJson(`${apiUrl}/uploads/${id}`, { headers: authorized })).body;
  const finished = (id: string, timeoutMs = 300_000) =>
    waitFor(
      `upload ${id} to complete or fail`,
      async () => {
        const body = await view(id);
        return ["completed", "failed"].includes(body.status) && body;
      },
      timeoutMs,
    );
  async function landedOnce(id: string, rows: number): Promise<void> {
    const result = await env.sql.query(
      "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
      [id],
    );
    assert.deepEqual(result.rows[0], { n: rows, distinct_rows: rows });
  }
  /** What PostgreSQL holds of an upload's batches (the live view may lag by a second). */
  async function batchCounts(id: string) {
    const result = await env.sql.query(
      "select batches_total as total, batches_published as published, batches_landed as landed from uploads where id = $1",
      [id],
    );
    return result.rows[0] as { total: number; published: number; landed: number };
  }
  async function uploadLands(rows: number): Promise<string> {
    const id = await startUpload(rows);
    const done = await finished(id);
    assert.equal(done.status, "completed", JSON.stringify(done));
    await landedOnce(id, rows);
    return id;
  }

  async function batchConsumers(): Promise<number> {
    const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    try {
      const channel = await connection.createChannel();
      const queue = await channel.checkQueue(queueNames(env.config.namespace).batches);
      return queue.consumerCount;
    } finally {
      await connection.close();
    }
  }
  const landedBy = async (pod: any) =>
    (await metricSample(
      `http://${pod.status.podIP}:${WORKER_METRICS_PORT}`,
      "sluice_batches_consumed_total",
      'outcome="landed"',
    )) ?? 0;
  const names = (list: any[]) => list.map((p) => p.metadata.name as string);

  test("every pod Ready under the restricted standard", async (t) => {
    const started = Date.now();
    await installSluice(namespace, outside, {
      // Publishing keeps pace with landing, so a 100-batch upload is still publishing while
      // its first batches land.
      set: [`config.MAX_BATCHES_IN_FLIGHT_PER_UPLOAD=${IN_FLIGHT}`],
      valuesFiles: [IN_CLUSTER_VALUES],
    });
    for (const program of PROGRAMS) await rolledOut(program);
    const ready = [];
    for (const program of PROGRAMS) {
      for (const pod of await pods(program)) {
        assert.ok(isReady(pod), pod.metadata.name);
        ready.push(program);
      }
    }
    assert.deepEqual(ready, ["api", "api", "worker", "worker", "controller"]);
    apiUrl = await apiUrlOf(namespace);
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
    const started = Date.now();
    await uploadLands(ROWS);
    t.diagnostic(
      `${ROWS} rows, 0 lost, 0 duplicated, completed in ${seconds(started)} via ${apiUrl}`,
    );
  });

  test("the in-cluster values' uploads claim: made by the chart, bound, shared by the api pods", async (t) => {
    const claim = await kubectlJson([...ns(), "get", "pvc", `${RELEASE}-uploads`]);
    assert.equal(claim.status.phase, "Bound");
    assert.equal(claim.spec.volumeName, persistentVolume());
    assert.deepEqual(claim.status.accessModes, ["ReadWriteMany"]);
    assert.equal(
      claim.metadata.labels["app.kubernetes.io/managed-by"],
      "Helm",
      "the chart made it",
    );
    const api = await pods("api");
    for (const pod of api) {
      const volume = pod.spec.volumes.find((v: any) => v.name === "uploads");
      assert.deepEqual(volume.persistentVolumeClaim, { claimName: `${RELEASE}-uploads` });
    }
    // What one api pod stores there, the other reads.
    const [writer, reader] = api.map((p: any) => p.metadata.name as string);
    const file = `/var/lib/sluice/uploads/probe-${writer}`;
    await exec(writer as string, `require('fs').writeFileSync('${file}','${writer}')`);
    const read = await exec(
      reader as string,
      `const fs=require('fs');console.log(fs.readFileSync('${file}','utf8'));fs.rmSync('${file}')`,
    );
    assert.equal(read.trim(), writer);
    t.diagnostic(
      `claim ${claim.metadata.name} Bound to ${claim.spec.volumeName} (${claim.status.capacity.storage}, ReadWriteMany); written by ${writer}, read by ${reader}`,
    );
  });

  test("kubectl scale of the workers to 3: three Ready workers, each landing batches", async (t) => {
    const started = Date.now();
    await scaleWorkers(3);
    await rolledOut("worker");
    const workers = await pods("worker");
    assert.equal(workers.filter(isReady).length, 3);
    // Each worker's own count of the batches it landed, before and after one upload.
    const before = await Promise.all(workers.map(landedBy));
    await waitFor("three consumers on the batch queue", async () => (await batchConsumers()) === 3);
    const id = await uploadLands(ROWS);
    const landed = (await Promise.all(workers.map(landedBy))).map(
      (count, i) => count - (before[i] as number),
    );
    const perPod = workers.map((p: any, i: number) => `${p.metadata.name}: ${landed[i]}`);
    assert.equal(
      landed.reduce((a, b) => a + b, 0),
      (await view(id)).batches.total,
      perPod.join(", "),
    );
    for (const count of landed) assert.ok(count > 0, `a worker landed nothing: ${perPod}`);
    t.diagnostic(
      `3 replicas Ready, ${ROWS} rows landed once; batches per pod ${perPod.join(", ")} (${seconds(started)})`,
    );
  });

  test("the controller's pod reports UploadStuck on the worker Deployment when the workers are scaled to zero mid-upload, then UploadRecovered", async (t) => {
    // Whatever fails below, the checks after this one find the chart's workers.
    t.after(() => scaleWorkers(WORKERS));
    // Landing held from before the upload, the workers certainly stop before it is done:
    // they can have had no more than their prefetch of its batches in hand.
    const release = await holdAllLanding(env.env.DATABASE_URL as string);
    let id: string;
    try {
      id = await startUpload(ROWS);
      await scaleWorkers(0);
      await waitFor("the workers to stop consuming", async () => (await batchConsumers()) === 0);
    } finally {
      await release();
    }
    await waitFor(
      "the worker pods to end",
      async () => (await pods("worker")).length === 0,
      120_000,
    );
    const gone = Date.now();
    const stuckView = await view(id);
    assert.ok(stuckView.batches.landed < stuckView.batches.total, JSON.stringify(stuckView));
    const stuck = await uploadEvent(namespace, "UploadStuck", id, 120_000);
    const stuckAfter = seconds(gone);
    const [controller] = await pods("controller");
    await assertStuckForWorkers(namespace, stuck, controller.metadata.name);

    const scaledBack = Date.now();
    await scaleWorkers(WORKERS);
    const recovered = await uploadEvent(namespace, "UploadRecovered", id, 120_000);
    const recoveredAfter = seconds(scaledBack);
    await assertRecovered(namespace, recovered, id);
    const done = await finished(id);
    assert.equal(done.status, "completed", JSON.stringify(done));
    await landedOnce(id, ROWS);
    t.diagnostic(
      `${stuckView.batches.landed} of ${stuckView.batches.total} batches landed at 0 workers; UploadStuck ${stuckAfter} after the last worker ended, UploadRecovered ${recoveredAfter} after scaling back to ${WORKERS}, reported by ${controller.metadata.name}; ${ROWS} rows landed once`,
    );
  });

  test("a rolling restart of the workers during an upload: nothing lost or duplicated", async (t) => {
    const id = await startUpload(ROWS);
    await waitFor("a first batch to land", async () => (await view(id)).batches.landed > 0);
    // Landing held, an old worker is told to stop while it holds batches of the upload.
    const release = await holdLanding(env.env.DATABASE_URL as string, id);
    const old = names(await pods("worker"));
    // The old workers' pods stay after they end, for how they exited to be read.
    const keptUntil = await keepPodsAfterDeletion(namespace, old);
    t.after(keptUntil);
    const restarted = Date.now();
    await kubectl([...ns(), "rollout", "restart", `deployment/${RELEASE}-worker`]);
    const stopped = await waitFor(
      "an old worker to be told to stop",
      async () => {
        for (const name of old) {
          const logs = await kubectlResult([...ns(), "logs", name]);
          if (logs.stdout.includes("shutting down")) return name;
        }
        return undefined;
      },
      180_000,
    );
    const atStop = await view(id);
    await release();
    await rolledOut("worker");
    // The stopped worker landed what it held and then exited by itself, within its drain.
    const [end, ...others] = await waitFor(`${stopped}'s worker to exit`, () =>
      containerEnds(namespace, stopped),
    );
    assert.deepEqual(
      { end, others },
      { end: { container: "worker", exitCode: 0, reason: "Completed" }, others: [] },
    );
    await keptUntil();
    const done = await finished(id);
    assert.equal(done.status, "completed", JSON.stringify(done));
    await landedOnce(id, ROWS);
    const now = names(await pods("worker"));
    assert.deepEqual(
      now.filter((name) => old.includes(name)),
      [],
    );
    t.diagnostic(
      `${atStop.batches.landed} of ${atStop.batches.total} batches landed when ${stopped} was told to stop; it exited ${end?.exitCode} (${end?.reason}); ${old.join(", ")} replaced by ${now.join(", ")}; ${ROWS} rows, 0 lost, 0 duplicated, completed ${seconds(restarted)} after the restart`,
    );
  });

  /**
   * An upload whose publishing an api pod holds: with no worker consuming, no batch can land,
   * so the api publishes MAX_BATCHES_IN_FLIGHT_PER_UPLOAD batches and waits, however fast
   * or slow the machine, until the workers are scaled back.
   */
  async function publishingHeld(t: TestContext) {
    // Whatever fails in the check, the checks after it find the chart's workers.
    t.after(() => scaleWorkers(WORKERS));
    await scaleWorkers(0);
    await waitFor("the workers to stop consuming", async () => (await batchConsumers()) === 0);
    // An api pod of a rollout just ended may still be in its preStop pause, taking what the
    // Service sends it: the upload is to be held by a pod that stays until it is restarted.
    await waitFor(
      "the api's replaced pods to be gone",
      async () =>
        (await pods("api", { terminating: true })).every(
          (pod: any) => !pod.metadata.deletionTimestamp,
        ),
      300_000,
    );
    const id = await startUpload(ROWS);
    const api = await pods("api");
    const held = async (pod: any) =>
      metricSample(`http://${pod.status.podIP}:${API_PORT}`, "sluice_uploads_publishing_held");
    const publisher = await waitFor("an api pod to hold the upload's publishing", async () => {
      for (const pod of api) if ((await held(pod)) === 1) return pod;
      return undefined;
    }).catch(async (err: Error) => {
      const seen = [];
      for (const pod of await pods("api", { terminating: true })) {
        const value = await held(pod).catch((e: Error) => e.message);
        seen.push(
          `${pod.metadata.name}${pod.metadata.deletionTimestamp ? " (terminating)" : ""}: ${value}`,
        );
      }
      throw new Error(`${err.message}; upload ${id}; held per api pod: ${seen.join(", ")}`);
    });
    // What a held publisher records before it waits.
    const atRestart = await batchCounts(id);
    assert.deepEqual(
      { published: atRestart.published, landed: atRestart.landed },
      { published: IN_FLIGHT, landed: 0 },
    );
    assert.ok(atRestart.published < atRestart.total, JSON.stringify(atRestart));
    return { id, api, publisher, atRestart };
  }

  /** Restarts the api, and waits until the new pods are Ready and the old ones gone. */
  async function restartApi(old: any[]): Promise<void> {
    await kubectl([...ns(), "rollout", "restart", `deployment/${RELEASE}-api`]);
    await rolledOut("api");
    // Nothing landing, an old pod cannot finish publishing within its drain deadline: it ends.
    for (const name of names(old)) {
      await waitFor(
        `${name} to be gone`,
        async () =>
          (await kubectlResult([...ns(), "get", "pod", name])).stderr.includes("NotFound"),
        300_000,
      );
    }
  }

  test("a rolling restart of the api while it publishes an upload: completed or failed with a reason, never stuck", async (t) => {
    const { id, api, publisher, atRestart } = await publishingHeld(t);
    const restarted = Date.now();
    await restartApi(api);
    // The old pods published no further: the rest is for the new replicas, from the claim.
    assert.equal((await batchCounts(id)).published, atRestart.published);
    await scaleWorkers(WORKERS);
    const done = await finished(id).catch(async (err: Error) => {
      const stuck = await uploadEvents(namespace, "UploadStuck", id);
      throw new Error(
        `${err.message}: stuck at ${JSON.stringify(await view(id))}; ${stuck.map((e: any) => e.message).join("; ")}`,
      );
    });
    const now = names(await pods("api"));
    assert.deepEqual(
      now.filter((name) => names(api).includes(name)),
      [],
    );
    if (done.status === "completed") await landedOnce(id, ROWS);
    else assert.ok(done.error?.message, `failed without a reason: ${JSON.stringify(done)}`);
    t.diagnostic(
      `${atRestart.published} of ${atRestart.total} batches published by ${publisher.metadata.name} at the restart, none landed; ${names(api).join(", ")} replaced by ${now.join(", ")}; ${done.status}${done.status === "completed" ? `, ${ROWS} rows, 0 lost, 0 duplicated` : `: ${done.error.message}`}, ${seconds(restarted)} after the restart`,
    );
  });

  const releaseRevision = async () =>
    (JSON.parse(await helm(["history", RELEASE, ...ns(), "--output", "json"])) as any[]).at(-1);
  const configValue = async (key: string) =>
    (await kubectlJson([...ns(), "get", "configmap", `${RELEASE}-config`])).data[key];
  const allPods = async () => (await Promise.all(PROGRAMS.map((program) => pods(program)))).flat();
  /** helm upgrade keeping every value but one. */
  const upgradeWith = (setting: string) =>
    helm(["upgrade", RELEASE, CHART, ...ns(), "--reuse-values", "--set", setting]);

  test("helm upgrade with a changed value rolls every pod, and uploads still land", async (t) => {
    const before = names(await allPods());
    const started = Date.now();
    await upgradeWith("config.LOG_LEVEL=debug");
    for (const program of PROGRAMS) await rolledOut(program);
    const rolled = Date.now();
    const after = names(await allPods());
    assert.deepEqual(
      after.filter((name) => before.includes(name)),
      [],
    );
    assert.equal(await configValue("LOG_LEVEL"), "debug");
    const revision = await releaseRevision();
    assert.deepEqual([revision.revision, revision.status], [2, "deployed"]);
    await uploadLands(ROWS / 5);
    t.diagnostic(
      `revision 2 (LOG_LEVEL=debug): ${after.length} pods replaced in ${((rolled - started) / 1000).toFixed(1)}s; ${ROWS / 5} rows landed once after`,
    );
  });

  test("helm test: the chart's test pod passes against the live install under restricted", async (t) => {
    const started = Date.now();
    await helm(["test", RELEASE, ...ns(), "--timeout", "120s"]);
    const pod = await kubectlJson([...ns(), "get", "pod", `${RELEASE}-test-api`]);
    assert.equal(pod.status.phase, "Succeeded");
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    const logs = (await kubectl([...ns(), "logs", `${RELEASE}-test-api`])).trim().split("\n");
    assert.deepEqual(logs.slice(0, 3), [
      "GET /readyz: 200",
      "GET /uploads: 401",
      "GET /uploads (with a key): 200",
    ]);
    t.diagnostic(`${pod.metadata.name} Succeeded in ${seconds(started)}: ${logs.join("; ")}`);
  });

  test("helm rollback to the first revision restores the value, rolls the pods, and uploads land", async (t) => {
    const before = names(await allPods());
    const started = Date.now();
    await helm(["rollback", RELEASE, "1", ...ns()]);
    for (const program of PROGRAMS) await rolledOut(program);
    const rolled = Date.now();
    const after = names(await allPods());
    assert.deepEqual(
      after.filter((name) => before.includes(name)),
      [],
    );
    assert.equal(await configValue("LOG_LEVEL"), "info");
    const revision = await releaseRevision();
    assert.deepEqual([revision.revision, revision.status], [3, "deployed"]);
    assert.match(revision.description, /Rollback to 1/);
    await uploadLands(ROWS / 5);
    t.diagnostic(
      `revision 3 (rollback to 1, LOG_LEVEL=info): ${after.length} pods replaced in ${((rolled - started) / 1000).toFixed(1)}s; ${ROWS / 5} rows landed once after`,
    );
  });

  // Five minutes of it are the controller's wait for an api to publish the upload again.
  test("with the default emptyDir spool, an api stopped mid-publishing fails its upload BatchesLost, never stuck", {
    timeout: 900_000,
  }, async (t) => {
    await upgradeWith("api.uploads.volume=emptyDir");
    await rolledOut("api");
    const { id, api, publisher, atRestart } = await publishingHeld(t);
    const restarted = Date.now();
    // The stored batches go with the old pods; the new ones have none to take over from.
    await restartApi(api);
    await scaleWorkers(WORKERS);
    // The controller ends the upload once no api has published it, nor a batch of it landed,
    // for as long as an abandoned intake (five minutes).
    const done = await finished(id, 600_000);
    assert.equal(done.status, "failed", JSON.stringify(done));
    assert.equal(done.error?.code, "BatchesLost", JSON.stringify(done));
    const now = names(await pods("api"));
    assert.deepEqual(
      now.filter((name) => names(api).includes(name)),
      [],
    );
    // What was published lands once, and nothing else.
    const batches = queueNames(env.config.namespace).batches;
    await waitFor("the published batches to land", async () => {
      const queue = queueStates(env.config.namespace).find((q) => q.name === batches);
      return queue?.ready === 0 && queue.unacked === 0;
    });
    const counts = await batchCounts(id);
    assert.deepEqual(
      { published: counts.published, landed: counts.landed },
      { published: atRestart.published, landed: atRestart.published },
    );
    const { rows } = await env.sql.query(
      "select count(*)::int as n, count(distinct row_number)::int as distinct_rows, (select rows_landed from uploads where id = $1)::int as counted from upload_rows where upload_id = $1",
      [id],
    );
    assert.deepEqual(rows[0], {
      n: counts.landed * 1000,
      distinct_rows: counts.landed * 1000,
      counted: counts.landed * 1000,
    });
    t.diagnostic(
      `${atRestart.published} of ${atRestart.total} batches published by ${publisher.metadata.name} at the restart, none landed; ${done.error.code} ${seconds(restarted)} after the restart: ${done.error.message}; ${counts.landed} batches landed once`,
    );
  });
});
