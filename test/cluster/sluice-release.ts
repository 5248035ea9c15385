// Sluice from the image in a namespace of its own, as docs/kubernetes.md installs it, with
// this machine's PostgreSQL, Redis, RabbitMQ and S3 behind Services of the namespace: what
// the cluster checks that run Sluice's pods share.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { after, before } from "node:test";
import pg from "pg";
import { ensureBucket } from "../../src/core/storage/s3.ts";
import { sampleCsv } from "../support/csv-samples.ts";
import { getJson, requestFailed, type TestEnv, testEnv, waitFor } from "../support/stack.ts";
import {
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
export const IMAGE = { repository: "sluice", tag: version as string };
export const PROGRAMS = ["api", "worker", "controller"] as const;
export type Program = (typeof PROGRAMS)[number];
export const API_KEY = "k3y";

/** Why the image checks cannot run here (no image), or undefined; in CI a failure instead. */
export async function missingImage(): Promise<string | undefined> {
  const missing = await ensureSluiceImage(`${IMAGE.repository}:${IMAGE.tag}`);
  // CI builds the image before these checks: there a missing image is a failure, not a skip.
  if (missing && process.env.CI) throw new Error(missing);
  return missing;
}

/** RabbitMQ's management API on this machine: its rabbitmq_management plugin. */
export const MANAGEMENT_PORT = 15672;

/**
 * Waits, within `timeoutMs`, until RabbitMQ's management API on this machine answers for
 * guest: KEDA over `protocol: http` reads the queue nowhere else, and a broker starting, or
 * without its plugin, would leave a check waiting for a reading with no word of why.
 */
export async function managementApiAnswers(timeoutMs = 120_000): Promise<string> {
  const url = `http://127.0.0.1:${MANAGEMENT_PORT}/api/overview`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      const answer = await getJson(url, {
        headers: { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
        signal: AbortSignal.timeout(10_000),
      });
      if (answer.status === 200) return `RabbitMQ ${answer.body.rabbitmq_version}`;
      last = `${url}: HTTP ${answer.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `RabbitMQ's management API did not answer within ${timeoutMs / 1000}s (${last}); is its plugin on? rabbitmq-plugins enable rabbitmq_management`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export type ServiceName = "postgresql" | "redis" | "rabbitmq" | "rabbitmq-management" | "s3";

export type Outside = Readonly<{
  env: TestEnv;
  /** The port on the node each Service's endpoint is: what a NetworkPolicy sees. */
  nodePorts: Readonly<Record<ServiceName, number>>;
  close(): Promise<void>;
}>;

/**
 * A database and bucket of their own (production creates neither; an operator does), and
 * each service as a Service of the namespace whose endpoint is a forwarder on the node;
 * `overrides` name the test world (its clean-up removes the queues and keys of its namespace).
 */
export async function servicesOutside(
  namespace: string,
  overrides: Record<string, string> = {},
): Promise<Outside> {
  const env = await testEnv(overrides);
  const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await admin.connect();
  await admin.query(`create database "${databaseName(env)}"`);
  await admin.end();
  await ensureBucket(env.s3, env.config.s3.bucket);
  const s3Port = Number(new URL(env.env.AWS_ENDPOINT as string).port);
  const forwards: Array<{ close(): Promise<void> }> = [];
  const nodePorts = {} as Record<ServiceName, number>;
  for (const [name, port, target] of [
    ["postgresql", 5432, 5432],
    ["redis", 6379, 6379],
    ["rabbitmq", 5672, 5672],
    ["rabbitmq-management", 15672, MANAGEMENT_PORT],
    ["s3", 80, s3Port],
  ] as const) {
    const forward = await forwardFromNode({ host: "127.0.0.1", port: target });
    forwards.push(forward);
    nodePorts[name] = forward.port;
    await serviceOutside(namespace, name, port, forward.port);
  }
  return {
    env,
    nodePorts,
    async close() {
      for (const forward of forwards) await forward.close();
      await env.cleanup();
    },
  };
}

/**
 * A namespace of its own with the services outside it, made before the checks of the
 * describe that calls this (and given to `made`) and removed after them.
 */
export function namespaceWithServices(
  prefix: string,
  made: (world: { namespace: string; outside: Outside }) => void,
): void {
  let namespace: string | undefined;
  let outside: Outside | undefined;
  before(async () => {
    namespace = await createNamespace(prefix);
    outside = await servicesOutside(namespace);
    made({ namespace, outside });
  });
  after(async () => {
    if (namespace) await deleteNamespace(namespace);
    await outside?.close();
  });
}

const databaseName = (env: TestEnv) => new URL(env.env.DATABASE_URL as string).pathname.slice(1);

/**
 * helm install of the chart from the image against those Services; `credentials`, `set`
 * and `valuesFiles` add to or override the defaults.
 */
export async function installSluice(
  namespace: string,
  outside: Outside,
  options: {
    credentials?: Record<string, string>;
    set?: readonly string[];
    valuesFiles?: readonly string[];
    /** SLUICE_NAMESPACE left to the chart's default instead of the test world's. */
    chartNamespace?: boolean;
  } = {},
): Promise<void> {
  const { env } = outside;
  await installChart(
    namespace,
    {
      DATABASE_URL: `postgres://postgres@postgresql:5432/${databaseName(env)}`,
      REDIS_URL: "redis://redis:6379",
      RABBITMQ_URL: "amqp://guest:guest@rabbitmq:5672",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      API_KEYS: `acme:${API_KEY}`,
      ...options.credentials,
    },
    [
      `image.repository=${IMAGE.repository}`,
      `image.tag=${IMAGE.tag}`,
      "image.pullPolicy=Never",
      ...(options.chartNamespace ? [] : [`config.SLUICE_NAMESPACE=${env.config.namespace}`]),
      `config.S3_BUCKET=${env.config.s3.bucket}`,
      "config.AWS_ENDPOINT=http://s3",
      "config.STUCK_AFTER_SECONDS=5",
      "config.CONTROLLER_INTERVAL_SECONDS=1",
      ...(options.set ?? []),
    ],
    options.valuesFiles,
  );
}

/** The Events of the namespace with this reason that name the upload. */
export async function uploadEvents(namespace: string, reason: string, id: string): Promise<any[]> {
  const found = await kubectlJson([
    ...["--namespace", namespace, "get", "events", "--field-selector", `reason=${reason}`],
  ]);
  return found.items.filter((e: any) => e.message.includes(id));
}

/** Waits, within `timeoutMs`, for the first Event with this reason about the upload. */
export async function uploadEvent(
  namespace: string,
  reason: string,
  id: string,
  timeoutMs: number,
): Promise<any> {
  const [event] = await waitFor(
    `an ${reason} Event`,
    async () => {
      const found = await uploadEvents(namespace, reason, id);
      return found.length > 0 && found;
    },
    timeoutMs,
  );
  return event;
}

/** An UploadStuck Event blaming the missing workers, on their Deployment, from `reporter`. */
export async function assertStuckForWorkers(
  namespace: string,
  stuck: any,
  reporter: string,
): Promise<void> {
  const deployment = await kubectlJson([
    ...["--namespace", namespace, "get", "deployment", `${RELEASE}-worker`],
  ]);
  assert.equal(stuck.type, "Warning");
  assert.deepEqual(stuck.involvedObject, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    name: `${RELEASE}-worker`,
    namespace,
    uid: deployment.metadata.uid,
  });
  assert.match(stuck.message, /likely cause: no worker consumes the batch queue/);
  assert.equal(stuck.reportingInstance, reporter);
}

/** An UploadRecovered Event about the upload, after one UploadStuck for its episode. */
export async function assertRecovered(namespace: string, recovered: any, id: string) {
  assert.equal(recovered.type, "Normal");
  assert.match(recovered.message, new RegExp(`Upload ${id} is moving again`));
  assert.equal(
    (await uploadEvents(namespace, "UploadStuck", id)).length,
    1,
    "one Event per stuck episode",
  );
}

/** The program's pods, those being deleted left out unless `terminating` asks for them. */
export async function podsOf(
  namespace: string,
  program: Program,
  { terminating = false } = {},
): Promise<any[]> {
  const found = await kubectlJson([
    "--namespace",
    namespace,
    "get",
    "pods",
    "-l",
    `app.kubernetes.io/component=${program}`,
  ]);
  return found.items.filter((p: any) => terminating || !p.metadata.deletionTimestamp);
}

/** Waits for the program's Deployment to roll out; on failure, with what its pod printed. */
export async function rolledOut(namespace: string, program: Program): Promise<void> {
  const ns = ["--namespace", namespace];
  await kubectl([...ns, "rollout", "status", `deployment/${RELEASE}-${program}`, "--timeout=180s"])
    // What the programs printed says why they are not Ready.
    .catch(async (err: Error) => {
      const [pod] = await podsOf(namespace, program);
      if (!pod) throw err;
      const logs = await kubectlResult([
        ...ns,
        "logs",
        pod.metadata.name,
        "--previous",
        "--tail=20",
      ]);
      const now = await kubectlResult([...ns, "logs", pod.metadata.name, "--tail=20"]);
      throw new Error(`${err.message}\n${logs.stdout}${logs.stderr}\n${now.stdout}`);
    });
}

/** The api's Service address, as a client inside the cluster or on the node reaches it. */
export async function apiUrl(namespace: string): Promise<string> {
  const service = await kubectlJson(["--namespace", namespace, "get", "service", `${RELEASE}-api`]);
  const url = `http://${service.spec.clusterIP}:${service.spec.ports[0].port}`;
  // kube-proxy programs a Service's endpoints a moment after its pods are Ready; until then a
  // connection to its address is refused.
  let last = "no answer yet";
  await waitFor(
    `the api's Service at ${url} to answer /readyz`,
    async () => {
      const answer = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
        async (r) => `${r.status} ${await r.text()}`,
        (err: Error) => `${(err.cause as NodeJS.ErrnoException | undefined)?.code ?? err.name}`,
      );
      last = answer;
      return answer.startsWith("200 ");
    },
    120_000,
  ).catch(async (err: Error) => {
    const slices = await kubectlResult([
      ...["--namespace", namespace, "get", "endpointslices", "-o", "wide"],
    ]);
    throw new Error(`${err.message}; last: ${last}\n${slices.stdout}${slices.stderr}`);
  });
  return url;
}

/**
 * POSTs a CSV file to the api's /uploads with the key, on a connection of its own, and gives
 * the api's answer. An api refusing an upload answers before reading the body and closes the
 * connection; fetch, still sending, then fails with "fetch failed" (EPIPE, ECONNRESET) and
 * loses the answer, which node:http hears. Fails naming the URL and the cause when no answer
 * came.
 */
export function postUpload(
  url: string,
  csv: string,
  query = "",
): Promise<{ status: number; body: any }> {
  const target = `${url}/uploads${query}`;
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = httpRequest(target, {
      method: "POST",
      agent: false,
      headers: {
        "content-type": "text/csv",
        "content-length": Buffer.byteLength(csv),
        authorization: `Bearer ${API_KEY}`,
      },
    });
    request.on("response", (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", (err) => reject(requestFailed("POST", target, err)));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const body = text.startsWith("{") ? JSON.parse(text) : text;
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    // Once answered, the write cut short by the api closing the connection is no news.
    request.on("error", (err) => {
      if (!answered) reject(requestFailed("POST", target, err));
    });
    request.end(csv);
  });
}

/**
 * Uploads `rows` generated rows through the api and waits for the upload to end; checks
 * that every row landed exactly once and returns the upload's id.
 */
export async function uploadLands(
  url: string,
  outside: Outside,
  rows: number,
  timeoutMs = 300_000,
  whileUnderway: (id: string) => Promise<void> = async () => {},
): Promise<string> {
  const accepted = await postUpload(url, sampleCsv(rows).csv);
  if (accepted.status !== 202) {
    throw new Error(`upload refused: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  }
  const id = accepted.body.id as string;
  await whileUnderway(id);
  const done = await waitFor(
    "the upload to complete",
    async () => {
      const view = await getJson(`${url}/uploads/${id}`, {
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      return ["completed", "failed"].includes(view.body.status) && view.body;
    },
    timeoutMs,
  );
  if (done.status !== "completed") throw new Error(`upload ${id} ended ${JSON.stringify(done)}`);
  const { rows: counted } = await outside.env.sql.query(
    "select count(*)::int as n, count(distinct row_number)::int as distinct_rows from upload_rows where upload_id = $1",
    [id],
  );
  if (counted[0].n !== rows || counted[0].distinct_rows !== rows) {
    throw new Error(`upload ${id}: ${JSON.stringify(counted[0])} rows landed, ${rows} sent`);
  }
  return id;
}
