// The controller end to end: real PostgreSQL, Redis, RabbitMQ and S3, a real worker process,
// and a small Kubernetes API server standing in for the cluster.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KUBERNETES_PERMISSIONS } from "../src/controller/kubernetes.ts";
import { sampleCsv } from "./support/csv-samples.ts";
import { deploymentInvolved, type FakeKube, startFakeKube } from "./support/fake-kube.ts";
import type { Program } from "./support/program.ts";
import {
  acceptedUpload,
  getJson,
  type InProcess,
  type InProcessController,
  metricSample,
  spawnProgram,
  startControllerInProcess,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const NAMESPACE = "sluice-e2e";
const DEPLOYMENT_UID = "9e7f7c1a-6a0e-4c44-8f1e-00000000e2e0";

describe("the controller", () => {
  let env: TestEnv;
  let fake: FakeKube;
  let api: InProcess;
  let controller: InProcessController | undefined;
  let worker: Program | undefined;
  before(async () => {
    env = await testEnv({
      BATCH_SIZE: "100",
      STUCK_AFTER_SECONDS: "2",
      CONTROLLER_INTERVAL_SECONDS: "1",
      POD_NAMESPACE: NAMESPACE,
      POD_NAME: "sluice-controller-0",
      WORKER_DEPLOYMENT: "sluice-worker",
    });
    fake = await startFakeKube({
      deployments: [{ namespace: NAMESPACE, name: "sluice-worker", uid: DEPLOYMENT_UID }],
    });
    // No worker: uploads are published and then wait in the queue.
    api = await startInProcess(env, { worker: false });
  });
  after(async () => {
    await controller?.stop();
    await worker?.kill();
    await api.stop();
    await fake.close();
    await env.cleanup();
  });

  const upload = async (rows: number) => {
    return (await acceptedUpload(api.url, sampleCsv(rows).csv)).id;
  };
  const view = async (id: string) => (await getJson(`${api.url}/uploads/${id}`)).body;
  const events = (reason: string, id: string) =>
    fake.events().filter((e) => e.reason === reason && e.message.includes(id));

  test("reports an upload that stops moving once, and its recovery once, and keeps out of the way otherwise", async () => {
    // One batch: its landing completes the upload. With more, a worker that pauses for
    // STUCK_AFTER_SECONDS between two of them (a loaded machine does) is a second episode,
    // rightly reported, which this test cannot tell from a repeated report.
    const id = await upload(100);
    await waitFor(
      "its batch to be published",
      async () => (await view(id)).batches.published === 1,
    );

    controller = await startControllerInProcess(env, fake.kubeConfig());
    const stuck = await waitFor("an UploadStuck Event", async () => events("UploadStuck", id)[0]);
    assert.equal(stuck.type, "Warning");
    assert.deepEqual(
      stuck.involvedObject,
      deploymentInvolved(NAMESPACE, "sluice-worker", DEPLOYMENT_UID),
    );
    assert.match(
      stuck.message,
      new RegExp(
        `Upload ${id} has made no progress for \\d+s \\(0 of 1 batches landed, 1 published\\); likely cause: no worker consumes the batch queue`,
      ),
    );
    assert.equal(stuck.reportingInstance, "sluice-controller-0");

    const flagged = await waitFor("the stalled flag", async () => {
      const body = await view(id);
      return body.stalled && body;
    });
    assert.equal(flagged.stalledReason, "no worker consumes the batch queue");
    assert.equal(flagged.status, "queued");
    assert.equal(await metricSample(controller.url, "sluice_uploads_stuck"), 1);
    assert.equal(await metricSample(controller.url, "sluice_controller_leader"), 1);
    assert.equal(await metricSample(controller.url, "sluice_queue_consumers", 'kind="work"'), 0);
    assert.equal(await metricSample(controller.url, "sluice_queue_messages", 'kind="work"'), 1);
    assert.equal(
      await metricSample(controller.url, "sluice_queue_messages", 'kind="dead_letter"'),
      0,
    );
    assert.equal(
      await metricSample(controller.url, "sluice_uploads_in_progress", 'status="queued"'),
      1,
    );

    // A restarted controller finds the flag and does not report the same episode again.
    await controller.stop();
    controller = await startControllerInProcess(env, fake.kubeConfig());
    await waitFor(
      "the new controller to lead",
      async () => (await metricSample(controller?.url ?? "", "sluice_controller_leader")) === 1,
    );
    // The gauge is set at the end of a check, after that check's reports.
    await waitFor(
      "the new controller to finish a check",
      async () => (await metricSample(controller?.url ?? "", "sluice_uploads_stuck")) === 1,
    );
    assert.equal(
      await metricSample(
        controller.url,
        "sluice_stuck_upload_reports_total",
        'reason="UploadStuck"',
      ),
      0,
      "the new controller does not report the episode again",
    );
    assert.equal(events("UploadStuck", id).length, 1, "one Event per stuck episode");

    worker = spawnProgram("worker", env.env);
    const recovered = await waitFor(
      "an UploadRecovered Event",
      async () => events("UploadRecovered", id)[0],
    );
    assert.equal(recovered.type, "Normal");
    assert.match(recovered.message, new RegExp(`Upload ${id} is moving again`));
    await waitFor("the upload to complete", async () => (await view(id)).status === "completed");
    await waitFor("the stalled flag to clear", async () => (await view(id)).stalled === false);
    assert.equal((await view(id)).stalledReason, null);
    assert.equal(events("UploadStuck", id).length, 1);
    assert.equal(events("UploadRecovered", id).length, 1);
    assert.equal(await metricSample(controller.url, "sluice_uploads_stuck"), 0);
    assert.equal(
      await metricSample(
        controller.url,
        "sluice_stuck_upload_reports_total",
        'reason="UploadRecovered"',
      ),
      1,
    );
  });

  test("asks the API server for nothing beyond what its Role grants", async () => {
    await controller?.stop();
    controller = undefined;
    const sent = new Set(fake.requests.map((r) => `${r.verb} ${r.group}/${r.resource}`));
    const granted = new Set(
      KUBERNETES_PERMISSIONS.flatMap((p) =>
        p.verbs.map((verb) => `${verb} ${p.apiGroup}/${p.resource}`),
      ),
    );
    assert.deepEqual(
      [...sent].filter((s) => !granted.has(s)),
      [],
      "requests outside the Role",
    );
    // Every grant is used too, so the Role holds nothing the controller does not need.
    assert.deepEqual(
      [...granted].filter((g) => !sent.has(g)),
      [],
      "grants never used",
    );
    assert.ok(fake.requests.every((r) => r.namespace === NAMESPACE));
  });

  test("without a cluster reports through the status flag and metrics alone", async () => {
    await worker?.stop();
    const requestsBefore = fake.requests.length;
    const id = await upload(500);
    controller = await startControllerInProcess(env, undefined);
    await waitFor("the stalled flag", async () => (await view(id)).stalled === true);
    assert.equal(await metricSample(controller.url, "sluice_uploads_stuck"), 1);
    assert.equal(await metricSample(controller.url, "sluice_controller_leader"), 1);
    assert.equal(fake.requests.length, requestsBefore, "no Kubernetes request at all");
  });
});
