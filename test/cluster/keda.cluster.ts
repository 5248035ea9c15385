// KEDA scaling the worker on the batches queue: from none while the queue is empty, up
// while an upload's batches wait, and back to none once they are written; and, read over the
// management API, counting the batches the workers hold unacknowledged.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KEDA_NAMESPACE } from "../../scripts/cluster/keda.ts";
import { ca, leaf } from "../../scripts/cluster/pki.ts";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { queueStates } from "../support/broker-queues.ts";
import { holdAllLanding } from "../support/landing-holds.ts";
import { waitFor } from "../support/stack.ts";
import {
  CHART,
  forwardFromNode,
  helm,
  kubectl,
  kubectlJson,
  RELEASE,
  serviceOutside,
} from "./cluster.ts";
import {
  apiUrl,
  installSluice,
  managementApiAnswers,
  missingImage,
  namespaceWithServices,
  type Outside,
  rolledOut,
  uploadLands,
} from "./sluice-release.ts";

// 200 batches of 1,000 rows, their landing held until KEDA has scaled the workers up: a
// quiet machine lands them before KEDA's second look at the queue.
const ROWS = 200_000;
const MAX_WORKERS = 3;

const skip = await missingImage();

const replicasOf = async (namespace: string): Promise<number> =>
  (await kubectlJson(["--namespace", namespace, "get", "deployment", `${RELEASE}-worker`])).spec
    .replicas;

/** The release's ScaledObject once KEDA has made it Ready. */
const scaledObjectReady = (namespace: string) =>
  waitFor(
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

/**
 * Uploads `rows` through the release's api with every landing held from before the upload,
 * so that its batches wait for KEDA whatever the machine's pace; `meanwhile` runs while they
 * wait, then they land, and the upload is checked landed once.
 */
async function uploadWhileHeld(
  namespace: string,
  outside: Outside,
  rows: number,
  meanwhile: () => Promise<unknown>,
): Promise<void> {
  const release = await holdAllLanding(outside.env.env.DATABASE_URL as string);
  try {
    await uploadLands(await apiUrl(namespace), outside, rows, 300_000, async () => {
      await meanwhile();
      await release();
    });
  } finally {
    await release();
  }
}

describe("KEDA", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  namespaceWithServices("sluice-keda", (made) => {
    ({ namespace, outside } = made);
  });

  const workerReplicas = () => replicasOf(namespace);

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
    const scaledObject = await scaledObjectReady(namespace);
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
      await uploadWhileHeld(namespace, outside, ROWS, () =>
        waitFor(
          `the worker to scale to ${MAX_WORKERS}`,
          async () => counts.at(-1) === MAX_WORKERS,
          180_000,
        ),
      );
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

// A worker holds up to WORKER_PREFETCH batches unacknowledged; read over AMQP the queue
// leaves them out and may read 0, and start a scale-in, while they are still being written.
const HELD_BATCHES = 20;

/** KEDA polling every second, between no worker and one, with the broker's credentials apart. */
const ONE_WORKER_AT_MOST = [
  "worker.scaling=keda",
  "worker.keda.minReplicas=0",
  "worker.keda.maxReplicas=1",
  "worker.keda.pollingInterval=1",
  "worker.keda.cooldownPeriod=5",
  "worker.keda.usernameKey=RABBITMQ_USERNAME",
  "worker.keda.passwordKey=RABBITMQ_PASSWORD",
];
const GUEST = { RABBITMQ_USERNAME: "guest", RABBITMQ_PASSWORD: "guest" };

/** The queue's length as KEDA gives it to the HorizontalPodAutoscaler (external metrics API). */
async function kedaReading(namespace: string, hpaName: string): Promise<number> {
  const hpa = await kubectlJson(["--namespace", namespace, "get", "hpa", hpaName]);
  const { name, selector } = hpa.spec.metrics[0].external.metric;
  const labels = Object.entries(selector?.matchLabels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
  const reading = JSON.parse(
    await kubectl([
      "get",
      "--raw",
      `/apis/external.metrics.k8s.io/v1beta1/namespaces/${namespace}/${name}?labelSelector=${encodeURIComponent(labels)}`,
    ]),
  );
  // A quantity: "20", or "20500m" for 20.5.
  const value = String(reading.items[0].value);
  return value.endsWith("m") ? Number(value.slice(0, -1)) / 1000 : Number(value);
}

describe("KEDA over RabbitMQ's management API", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  let management: string;
  before(async () => {
    // KEDA reads the queue through it; without it the check would wait without saying why.
    management = await managementApiAnswers();
  });
  namespaceWithServices("sluice-keda-http", (made) => {
    ({ namespace, outside } = made);
  });

  // On a loaded machine KEDA's first reading and the worker's start each take minutes.
  test("batches a worker holds unacknowledged still count in KEDA's reading", {
    timeout: 900_000,
  }, async (t) => {
    await installSluice(namespace, outside, {
      credentials: GUEST,
      set: [
        ...ONE_WORKER_AT_MOST,
        "worker.keda.protocol=http",
        `worker.keda.host=http://rabbitmq-management.${namespace}.svc.cluster.local:15672`,
        // One worker takes every batch of the upload into its hands, and keeps them while
        // landing is held: a blocked landing, and one waiting for a database connection,
        // is not given up while the check looks.
        "config.WORKER_PREFETCH=64",
        "config.DB_STATEMENT_TIMEOUT_MS=600000",
        "config.COMMAND_TIMEOUT_MS=600000",
      ],
    });
    await rolledOut(namespace, "api");
    const scaledObject = await scaledObjectReady(namespace);
    const hpa = scaledObject.status.hpaName as string;
    await waitFor(
      "the worker to scale to 0",
      async () => (await replicasOf(namespace)) === 0,
      120_000,
    );
    const work = queueNames(outside.env.config.namespace).batches;
    let held = 0;
    let reading = 0;
    let lastReading = "none yet";
    // Held before the upload, no batch lands before the worker holds them all.
    await uploadWhileHeld(namespace, outside, HELD_BATCHES * 1000, async () => {
      // The worker KEDA started holds every batch: none ready, all unacknowledged.
      held = await waitFor(
        "the worker to hold every batch",
        async () => {
          const queue = queueStates(outside.env.config.namespace).find((q) => q.name === work);
          return queue?.ready === 0 && queue.unacked === HELD_BATCHES && queue.unacked;
        },
        300_000,
      );
      reading = await waitFor(
        "KEDA to read the held batches",
        async () => {
          // The metrics API server answers an error until KEDA has read the queue once.
          const value = await kedaReading(namespace, hpa).catch((err: Error) => {
            lastReading = err.message;
            return undefined;
          });
          if (value !== undefined) lastReading = String(value);
          return value === held && value;
        },
        120_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; KEDA's last reading: ${lastReading}`);
      });
      assert.equal(await replicasOf(namespace), 1, "no scale-in while batches are held");
    });
    await waitFor(
      "the worker to scale back to 0",
      async () => (await replicasOf(namespace)) === 0,
      300_000,
    );
    t.diagnostic(
      `KEDA read ${reading} while the worker held ${held} batches unacknowledged and none was ready (${management}, management API at rabbitmq-management.<namespace>.svc.cluster.local:15672)`,
    );
  });
});

describe("KEDA's fallback while it cannot read the queue", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  namespaceWithServices("sluice-keda-fallback", (made) => {
    ({ namespace, outside } = made);
  });

  /** The ScaledObject's Fallback condition, once KEDA has set it to `status`. */
  const fallbackCondition = (status: "True" | "False") =>
    waitFor(
      `the ScaledObject's Fallback condition to be ${status}`,
      async () => {
        const found = await kubectlJson([
          ...["--namespace", namespace, "get", "scaledobject", `${RELEASE}-worker`],
        ]);
        const conditions: Array<{ type: string; status: string; message?: string }> =
          found.status?.conditions ?? [];
        return conditions.find((c) => c.type === "Fallback" && c.status === status);
      },
      180_000,
    );

  test(`the worker held at the fallback's ${MAX_WORKERS} replicas while the broker cannot be read, and back to the queue's count once it can`, async (t) => {
    const managementAt = (service: string) =>
      `worker.keda.host=http://${service}.${namespace}.svc.cluster.local:15672`;
    const scaling = [
      "worker.scaling=keda",
      "worker.keda.minReplicas=1",
      `worker.keda.maxReplicas=${MAX_WORKERS}`,
      "worker.keda.pollingInterval=1",
      "worker.keda.protocol=http",
      "worker.keda.usernameKey=RABBITMQ_USERNAME",
      "worker.keda.passwordKey=RABBITMQ_PASSWORD",
      "worker.keda.fallback.failureThreshold=1",
      `worker.keda.fallback.replicas=${MAX_WORKERS}`,
      "worker.keda.behavior.scaleDown.stabilizationWindowSeconds=0",
    ];
    await installSluice(namespace, outside, {
      credentials: GUEST,
      // A broker KEDA cannot reach: a name that resolves nowhere, as when its Service is gone.
      set: [...scaling, managementAt("rabbitmq-management-gone")],
    });
    await rolledOut(namespace, "api");
    const failing = await fallbackCondition("True");
    await waitFor(
      `the worker to be held at ${MAX_WORKERS}`,
      async () => (await replicasOf(namespace)) === MAX_WORKERS,
      180_000,
    );

    // The broker readable again, the empty queue takes the worker to its minimum.
    await helm([
      ...["upgrade", RELEASE, CHART, "--namespace", namespace, "--reuse-values"],
      ...["--set", managementAt("rabbitmq-management")],
    ]);
    await fallbackCondition("False");
    await waitFor(
      "the worker to go back to 1",
      async () => (await replicasOf(namespace)) === 1,
      300_000,
    );
    t.diagnostic(
      `worker replicas 1→${MAX_WORKERS} under fallback (${failing.message ?? "Fallback"}), back to 1 once the management API answered`,
    );
  });
});

describe("KEDA reading the queue over amqps", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  let broker: Awaited<ReturnType<typeof forwardFromNode>>;
  let pki: string;
  let host: string;
  namespaceWithServices("sluice-keda-tls", (made) => {
    ({ namespace, outside } = made);
  });
  before(async () => {
    // The broker's TLS endpoint, ended on the node in front of RabbitMQ, with a certificate
    // for its in-cluster name from a CA of its own, which only the Secret gives KEDA.
    host = `rabbitmq-tls.${namespace}.svc.cluster.local`;
    pki = mkdtempSync(join(tmpdir(), "sluice-broker-tls-"));
    ca("broker-ca", "sluice-test-broker-ca", pki);
    leaf({ name: "broker", cn: host, sans: [`DNS:${host}`], signer: "broker-ca" }, pki);
    broker = await forwardFromNode(
      { host: "127.0.0.1", port: 5672 },
      {
        key: readFileSync(join(pki, "broker.key"), "utf8"),
        cert: readFileSync(join(pki, "broker.crt"), "utf8"),
      },
    );
    await serviceOutside(namespace, "rabbitmq-tls", 5671, broker.port);
  });
  after(async () => {
    await broker?.close();
    if (pki) rmSync(pki, { recursive: true, force: true });
  });

  test("the ScaledObject reads the queue over TLS, trusting the CA from the Secret, and takes the worker from 0 to 1 while batches queue", async (t) => {
    await installSluice(namespace, outside, {
      credentials: { ...GUEST, RABBITMQ_CA: readFileSync(join(pki, "broker-ca.crt"), "utf8") },
      set: [
        ...ONE_WORKER_AT_MOST,
        `worker.keda.host=amqps://${host}:5671`,
        "worker.keda.tls.enabled=true",
        "worker.keda.tls.caKey=RABBITMQ_CA",
      ],
    });
    await rolledOut(namespace, "api");
    await scaledObjectReady(namespace);
    await waitFor(
      "the worker to scale to 0",
      async () => (await replicasOf(namespace)) === 0,
      120_000,
    );
    // Held before the upload, the batches wait in the queue until KEDA has read them.
    await uploadWhileHeld(namespace, outside, HELD_BATCHES * 1000, () =>
      waitFor("KEDA to start a worker", async () => (await replicasOf(namespace)) === 1, 180_000),
    );
    assert.ok(broker.sessions() > 0, "KEDA's connections came through the TLS endpoint");
    t.diagnostic(
      `worker 0→1 on KEDA's reading over amqps://rabbitmq-tls.<namespace>.svc.cluster.local:5671 (${broker.sessions()} TLS sessions; the CA from the Secret's RABBITMQ_CA)`,
    );
  });
});
