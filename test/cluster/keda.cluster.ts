// KEDA scaling the worker on the batches queue: from none while the queue is empty, up
// while an upload's batches wait, and back to none once they are written.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KEDA_NAMESPACE } from "../../scripts/cluster/keda.ts";
import { waitFor } from "../support/stack.ts";
import { createNamespace, deleteNamespace, kubectlJson, RELEASE } from "./cluster.ts";
import {
  apiUrl,
  holdLanding,
  installSluice,
  missingImage,
  type Outside,
  rolledOut,
  servicesOutside,
  uploadLands,
} from "./sluice-release.ts";

// 200 batches of 1,000 rows, their landing held until KEDA has scaled the workers up: a
// quiet machine lands them before KEDA's second look at the queue.
const ROWS = 200_000;
const MAX_WORKERS = 3;

const skip = await missingImage();

describe("KEDA", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  before(async () => {
    namespace = await createNamespace("sluice-keda");
    outside = await servicesOutside(namespace);
  });
  after(async () => {
    await deleteNamespace(namespace);
    await outside?.close();
  });

  const workerReplicas = async (): Promise<number> =>
    (await kubectlJson(["--namespace", namespace, "get", "deployment", `${RELEASE}-worker`])).spec
      .replicas;

  test(`the ScaledObject takes the worker from 0 to ${MAX_WORKERS} while batches queue, and back to 0`, async (t) => {
    // KEDA reads the queue from its own namespace: the broker by its fully qualified name.
    const brokerHost = `rabbitmq.${namespace}.svc.cluster.local`;
    await installSluice(namespace, outside, {
      credentials: { RABBITMQ_URL: `amqp://guest:guest@${brokerHost}:5672` },
      set: [
        "worker.scaling=keda",
        "worker.keda.minReplicas=0",
        `worker.keda.maxReplicas=${MAX_WORKERS}`,
        "worker.keda.pollingInterval=1",
        "worker.keda.cooldownPeriod=5",
        "worker.keda.queueLength=5",
        "worker.keda.behavior.scaleDown.stabilizationWindowSeconds=0",
        "worker.keda.behavior.scaleUp.stabilizationWindowSeconds=0",
      ],
    });
    await rolledOut(namespace, "api");
    const scaledObject = await waitFor(
      "the ScaledObject to be Ready",
      async () => {
        const found = await kubectlJson([
          "--namespace",
          namespace,
          "get",
          "scaledobject",
          `${RELEASE}-worker`,
        ]);
        const conditions: Array<{ type: string; status: string }> = found.status?.conditions ?? [];
        return conditions.some((c) => c.type === "Ready" && c.status === "True") && found;
      },
      120_000,
    );
    // An empty queue: KEDA takes the Deployment's first replica away.
    await waitFor("the worker to scale to 0", async () => (await workerReplicas()) === 0, 120_000);

    // Every change of the count KEDA and its HorizontalPodAutoscaler make, in order.
    const counts = [0];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const replicas = await workerReplicas();
        if (replicas !== counts.at(-1)) counts.push(replicas);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    try {
      await uploadLands(await apiUrl(namespace), outside, ROWS, 300_000, async (id) => {
        const release = await holdLanding(outside.env.env.DATABASE_URL as string, id);
        try {
          await waitFor(
            `the worker to scale to ${MAX_WORKERS}`,
            async () => counts.at(-1) === MAX_WORKERS,
            180_000,
          );
        } finally {
          await release();
        }
      });
      await waitFor(
        "the worker to scale back to 0",
        async () => counts.at(-1) === 0 && counts.length > 1,
        300_000,
      );
    } finally {
      watching = false;
      await watcher;
    }
    const figure = counts.join("→");
    assert.equal(Math.max(...counts), MAX_WORKERS, `the count went ${figure}`);
    assert.equal(counts.at(-1), 0, figure);
    const hpa = scaledObject.status.hpaName as string;
    t.diagnostic(
      `worker replicas ${figure} over ${ROWS / 1000} batches (KEDA in ${KEDA_NAMESPACE}, ${hpa})`,
    );
  });
});
