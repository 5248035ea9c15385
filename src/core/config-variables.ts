// Every environment variable Sluice reads, declared once: its parser, its default, what it
// means and how the chart sets it. config.ts parses them; `npm run docs:config` writes
// .env.example, README's configuration table and the chart's config blocks from this list,
// and test/configuration.test.ts fails when any of them differs from it.
import { z } from "zod";

/** A parser, and the JSON Schema of the values the chart accepts for it. */
type Kind<P extends z.ZodType> = Readonly<{ parser: P; json: Readonly<Record<string, unknown>> }>;

/** How the chart gives a variable to the pods. */
export type ChartPlace =
  | Readonly<{
      /** A key of values.yaml's `config`, passed through one ConfigMap. */
      in: "config";
      /** values.yaml's value; null or "" leaves the program's default. */
      value: string | number | boolean | null;
      /** The comment above the key in values.yaml, when the chart needs one. */
      note?: string;
      /** Added to the kind's schema in values.schema.json. */
      schema?: Readonly<Record<string, unknown>>;
      /** values.schema.json requires the key: a template reads it. */
      required?: boolean;
    }>
  | Readonly<{ in: "secret"; note?: string }>
  /** Set by the chart's templates from other values; not a key of its own. */
  | Readonly<{ in: "template"; from: string }>;

type Doc = Readonly<{
  /** The value used when the variable is unset or empty, as it would be written. */
  default?: string;
  /** README's default column when the default is not one fixed value. */
  shown?: string;
  /** What it does; Markdown, one sentence or two. */
  meaning: string;
  chart: ChartPlace;
}>;

export type Variable<P extends z.ZodType = z.ZodType> = Doc &
  Readonly<{ parser: P; json: Kind<P>["json"] }>;

function variable<P extends z.ZodType>(kind: Kind<P>, doc: Doc & { default: string }): Variable<P>;
function variable<P extends z.ZodType>(kind: Kind<P>, doc: Doc): Variable<z.ZodOptional<P>>;
function variable<P extends z.ZodType>(kind: Kind<P>, doc: Doc): Variable {
  return Object.freeze({
    ...doc,
    parser: doc.default === undefined ? kind.parser.optional() : kind.parser,
    json: kind.json,
  });
}

const positiveInt = {
  parser: z.coerce
    .number({ error: "must be a positive integer" })
    .int({ error: "must be a positive integer" })
    .positive({ error: "must be a positive integer" }),
  json: { type: "integer", minimum: 1 },
};
const port = {
  parser: z.coerce
    .number({ error: "must be a port number" })
    .int({ error: "must be a port number" })
    .min(0, { error: "must be a port number" })
    .max(65535, { error: "must be a port number" }),
  json: { type: "integer", minimum: 0, maximum: 65535 },
};
const text = (minLength: number) => ({
  parser: z.string().min(minLength),
  json: { type: "string" },
});
const url = (protocols: string[]) => ({
  parser: z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  ),
  json: { type: "string" },
});
const flag = {
  parser: z
    .enum(["true", "false"], { error: "must be true or false" })
    .transform((v) => v === "true"),
  json: { type: "boolean" },
};
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => ({
  parser: z.enum(values),
  json: { enum: values },
});
const named = (pattern: RegExp, error: string) => ({
  parser: z.string().regex(pattern, { error }),
  json: { type: "string", pattern: pattern.source },
});
const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Parses `tenant:key` pairs separated by commas. */
const apiKeys = {
  parser: z.string().transform((value, ctx) => {
    const keys = new Map<string, string>();
    for (const entry of value
      .split(",")
      .map((e) => e.trim())
      .filter(Boolean)) {
      const at = entry.indexOf(":");
      if (at <= 0 || at === entry.length - 1) {
        ctx.addIssue({
          code: "custom",
          message: "must be a comma-separated list of tenant:key pairs",
        });
        return z.NEVER;
      }
      const key = entry.slice(at + 1);
      const tenant = entry.slice(0, at);
      // One key for two tenants would silently hand one tenant's uploads to the other.
      if (keys.has(key) && keys.get(key) !== tenant) {
        ctx.addIssue({ code: "custom", message: "gives the same key to more than one tenant" });
        return z.NEVER;
      }
      keys.set(key, tenant);
    }
    if (keys.size === 0) {
      ctx.addIssue({
        code: "custom",
        message: "must be a comma-separated list of tenant:key pairs",
      });
      return z.NEVER;
    }
    return keys;
  }),
  json: { type: "string" },
};

export const VARIABLES = {
  NODE_ENV: variable(oneOf(["development", "production", "test"]), {
    default: "development",
    meaning:
      "`production` never starts a local S3 server, needs AWS credentials, a bucket (or `CREATE_BUCKET=true`) and (for the api) `API_KEYS`",
    chart: { in: "config", value: "production" },
  }),
  PORT: variable(port, {
    default: "3000",
    meaning: "api HTTP port (uploads, the web page, `/healthz`, `/readyz`, `/metrics`)",
    chart: { in: "template", from: "api.port" },
  }),
  WORKER_PORT: variable(port, {
    default: "9464",
    meaning: "worker `/metrics`, `/healthz`, `/readyz`",
    chart: { in: "template", from: "worker.port" },
  }),
  CONTROLLER_PORT: variable(port, {
    default: "9465",
    meaning: "controller `/metrics`, `/healthz`, `/readyz`",
    chart: { in: "template", from: "controller.port" },
  }),
  UPLOAD_DIR: variable(text(1), {
    default: "./uploads",
    meaning:
      "where uploads wait as their batches until published or cancelled; replicas may share it: at start an api removes only ended uploads' files",
    chart: {
      in: "config",
      value: "/var/lib/sluice/uploads",
      note: "Where the api spools uploads; mounted from api.uploads.",
      schema: { pattern: "^/", description: "Absolute path; the uploads volume is mounted there." },
      required: true,
    },
  }),
  MAX_UPLOAD_BYTES: variable(positiveInt, {
    default: "5368709120",
    meaning: "largest upload body accepted, in bytes (5 GiB); larger bodies get 413",
    chart: { in: "config", value: null },
  }),
  MAX_COLUMNS: variable(positiveInt, {
    default: "512",
    meaning: "most header columns accepted; more get 422",
    chart: { in: "config", value: null },
  }),
  MAX_FIELD_BYTES: variable(positiveInt, {
    default: "131072",
    meaning: "largest field, in UTF-8 bytes; a larger field makes its row a row error",
    chart: { in: "config", value: null },
  }),
  MAX_ROW_BYTES: variable(positiveInt, {
    default: "1048576",
    meaning:
      "a row whose fields add up to more UTF-8 bytes is a row error, `RowTooLarge` (see wide rows)",
    chart: { in: "config", value: null },
  }),
  BATCH_SIZE: variable(positiveInt, {
    default: "1000",
    meaning: "rows per message and per S3 object; fewer when rows are wide (see wide rows)",
    chart: { in: "config", value: null },
  }),
  MAX_ACTIVE_UPLOADS_PER_TENANT: variable(positiveInt, {
    default: "10",
    meaning:
      "uploads of one tenant received, validating, queued or processing at once; past it 429 `TooManyActiveUploads`",
    chart: { in: "config", value: null },
  }),
  MAX_CONCURRENT_UPLOADS: variable(positiveInt, {
    default: "32",
    meaning:
      "upload bodies one api process receives at once; past it 503 `Busy` before the body is read",
    chart: {
      in: "config",
      value: null,
      note: "Per api pod: the api's total is this times api.replicas.",
    },
  }),
  UPLOAD_IDLE_TIMEOUT_MS: variable(positiveInt, {
    default: "60000",
    meaning:
      "a body that sends nothing for this long is cut off, its upload rejected and its place given back",
    chart: { in: "config", value: null },
  }),
  MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: variable(positiveInt, {
    default: "256",
    meaning:
      "batches of one upload published and not landed, at most; past it publishing waits for the workers, so the queue holds a bounded part of a large file",
    chart: {
      in: "config",
      value: null,
      note: "Batches of one upload waiting in RabbitMQ or held by workers, at most: with KEDA, leave room for queueLength ready batches per worker (and WORKER_PREFETCH held by each).",
    },
  }),
  UPLOAD_FORM_TIMEOUT_MS: variable(positiveInt, {
    default: "30000",
    meaning:
      "a multipart body that has not reached its `file` part after this long gets 408 `FormTimeout`",
    chart: { in: "config", value: null },
  }),
  MAX_PROGRESS_STREAMS: variable(positiveInt, {
    default: "256",
    meaning:
      "progress streams (`GET /uploads/:id/events`) one api process keeps open, a tenant half of them; past it 429 or 503",
    chart: { in: "config", value: null, note: "Per api pod, as MAX_CONCURRENT_UPLOADS." },
  }),
  DATABASE_URL: variable(url(["postgres:", "postgresql:"]), {
    default: "postgres://postgres@127.0.0.1:5432/sluice",
    meaning: "PostgreSQL: the uploads, their rows and each batch's landing record",
    chart: { in: "secret" },
  }),
  MIGRATE_AT_START: variable(flag, {
    default: "true",
    meaning:
      "`false`: the programs only check that the schema is current (needing DML rights only); migrations run apart (`npm run migrate`, the chart's Job)",
    chart: {
      in: "config",
      value: null,
      note: "false: the programs only check the schema; migrations.enabled sets it.",
    },
  }),
  TARGETS_FILE: variable(text(1), {
    shown: "unset",
    meaning:
      "a JSON file of targets by tenant and name, applied with the migrations by their user (see [Targets](#targets-rows-into-your-own-typed-tables)); a bad file stops the program naming each problem; unset: targets are defined through the api only",
    chart: {
      in: "config",
      value: null,
      note: "A JSON file of targets by tenant and name, applied with the migrations; null: none. Leave it null with `targets` below, which mounts the file and sets it.",
    },
  }),
  REDIS_URL: variable(url(["redis:", "rediss:"]), {
    default: "redis://127.0.0.1:6379",
    meaning: "Redis: each upload's live view and its progress events",
    chart: { in: "secret" },
  }),
  RABBITMQ_URL: variable(url(["amqp:", "amqps:"]), {
    default: "amqp://guest:guest@127.0.0.1:5672",
    meaning: "RabbitMQ: the queues of batches, their retries and dead letters",
    chart: { in: "secret" },
  }),
  SLUICE_NAMESPACE: variable(
    named(/^[a-z0-9][a-z0-9-]*$/, "must be lowercase letters, digits and dashes"),
    {
      default: "sluice",
      shown: "`sluice`; the chart: `<namespace>-<release>`",
      meaning:
        "prefix of queue names (`<namespace>.batches`), Redis keys (`<namespace>:…`) and the controller's Lease: one per install sharing them",
      chart: {
        in: "config",
        value: "",
        note: 'Prefix of the RabbitMQ queues, Redis keys and the controller\'s Lease: the worker consumes "<SLUICE_NAMESPACE>.batches". Empty: "<release namespace>-<release name>", so that releases sharing a broker or a Redis never take each other\'s batches.',
        schema: { pattern: "^([a-z0-9][a-z0-9-]*)?$" },
        required: true,
      },
    },
  ),
  S3_BUCKET: variable(text(3), {
    default: "sluice",
    meaning: "the bucket that keeps every batch as `uploads/{uploadId}/batch-{seq}.json`",
    chart: { in: "config", value: "sluice" },
  }),
  CREATE_BUCKET: variable(flag, {
    shown: "`true` outside production",
    meaning:
      "`true`: a missing `S3_BUCKET` is made (in `AWS_REGION`) by `npm run migrate` / the chart's migration Job and by each program at start, needing `s3:CreateBucket`; `false` (production's default): it must exist",
    chart: {
      in: "config",
      value: null,
      note: "true: a missing bucket is made, by the migration Job (migrations.enabled) or else by the programs at start, with the S3 credentials below (s3:CreateBucket); null: it must exist.",
    },
  }),
  AWS_REGION: variable(text(1), {
    default: "us-east-1",
    meaning: "the bucket's region",
    chart: { in: "config", value: "us-east-1" },
  }),
  AWS_ENDPOINT: variable(url(["http:", "https:"]), {
    shown: "`http://127.0.0.1:4566` outside production, unset in production",
    meaning:
      "an S3-compatible endpoint (LocalStack, MinIO, s3rver), path-style, where `npm start` runs a local server when nothing listens; unset means AWS S3",
    chart: {
      in: "config",
      value: "",
      note: "Empty: AWS S3 itself. Set for LocalStack or another S3-compatible endpoint.",
      schema: { pattern: "^(https?://.*)?$" },
    },
  }),
  AWS_ACCESS_KEY_ID: variable(text(1), {
    shown: "`test` outside production",
    meaning:
      "set with `AWS_SECRET_ACCESS_KEY`; unset in production means the default AWS credential chain (e.g. IRSA)",
    chart: { in: "secret", note: "Leave both empty with IRSA or EKS Pod Identity." },
  }),
  AWS_SECRET_ACCESS_KEY: variable(text(1), {
    shown: "`test` outside production",
    meaning: "set with `AWS_ACCESS_KEY_ID`",
    chart: { in: "secret" },
  }),
  API_KEYS: variable(apiKeys, {
    shown: "unset (auth off)",
    meaning:
      "`tenant:key` pairs, comma-separated; requests send `Authorization: Bearer <key>`; unset turns authentication off, in production only with `AUTH_DISABLED=true`",
    chart: {
      in: "secret",
      note: "Comma-separated tenant:key pairs; required unless config.AUTH_DISABLED is true.",
    },
  }),
  AUTH_DISABLED: variable(flag, {
    default: "false",
    meaning: "allows production without `API_KEYS`",
    chart: { in: "config", value: false },
  }),
  RETENTION_DAYS: variable(positiveInt, {
    shown: "unset (keep for good)",
    meaning:
      "the controller purges a finished upload's rows, row errors and S3 objects this many days after it arrived (its record stays)",
    chart: {
      in: "config",
      value: null,
      note: "Days after which the controller purges a finished upload's data; null keeps it for good.",
    },
  }),
  STUCK_AFTER_SECONDS: variable(positiveInt, {
    default: "120",
    meaning: "the controller reports uploads with no progress for this long",
    chart: { in: "config", value: null },
  }),
  CONTROLLER_INTERVAL_SECONDS: variable(positiveInt, {
    default: "15",
    meaning: "how often the controller looks for stuck uploads (and renews its Lease)",
    chart: {
      in: "config",
      value: null,
      note: "How often the controller looks for stuck uploads.",
    },
  }),
  WORKER_DEPLOYMENT: variable(named(KUBERNETES_NAME, "must be a Kubernetes object name"), {
    default: "sluice-worker",
    meaning: "the Deployment the controller's Events about stuck uploads are attached to",
    chart: { in: "template", from: "the worker Deployment's name" },
  }),
  POD_NAMESPACE: variable(named(KUBERNETES_NAME, "must be a Kubernetes namespace name"), {
    shown: "the kubeconfig's or the service account's namespace",
    meaning: "the controller's namespace, for its Events and Lease",
    chart: { in: "template", from: "the downward API" },
  }),
  POD_NAME: variable(text(1), {
    shown: "the host name",
    meaning: "the controller's pod name, holder of its Lease",
    chart: { in: "template", from: "the downward API" },
  }),
  WORKER_PREFETCH: variable(positiveInt, {
    default: "16",
    meaning: "batches a worker holds at once",
    chart: { in: "config", value: null },
  }),
  MAX_ATTEMPTS: variable(positiveInt, {
    default: "5",
    meaning: "deliveries of a failing batch before the dead-letter queue",
    chart: { in: "config", value: null },
  }),
  RETRY_BASE_MS: variable(positiveInt, {
    default: "1000",
    meaning: "first retry delay; doubles per attempt",
    chart: { in: "config", value: null },
  }),
  DB_STATEMENT_TIMEOUT_MS: variable(positiveInt, {
    default: "30000",
    meaning:
      "longest one database statement of a batch may run (a lock, a slow disk) before the batch is retried",
    chart: {
      in: "config",
      value: 30000,
      note: "The worker's drain on SIGTERM outlasts it and COMMAND_TIMEOUT_MS together: the chart derives the worker's SHUTDOWN_TIMEOUT_MS from them.",
      required: true,
    },
  }),
  CONNECT_TIMEOUT_MS: variable(positiveInt, {
    default: "5000",
    meaning:
      "longest PostgreSQL, Redis, RabbitMQ or S3 may take to accept a connection and answer its handshake; at start, past it the program stops naming the service and its URL",
    chart: {
      in: "config",
      value: null,
      note: "How long PostgreSQL, Redis, RabbitMQ and S3 may take to connect, and stay silent while an answer is owed, before the request gets 503 or the batch is retried.",
    },
  }),
  COMMAND_TIMEOUT_MS: variable(positiveInt, {
    default: "10000",
    meaning:
      "longest one of them may stay silent while an answer is owed (a query, a command, a publish confirm, a request); then 503 naming it, or the batch retried; RabbitMQ's heartbeat is half of it",
    chart: { in: "config", value: 10000, required: true },
  }),
  SHUTDOWN_TIMEOUT_MS: variable(positiveInt, {
    default: "20000",
    meaning:
      "how long a program may take to stop after SIGTERM; a stopping api answers uploads and `/readyz` 503 (`ShuttingDown`, `stopping`), ends bodies still arriving, and goes on publishing the uploads it accepted for three quarters of it (the chart's `terminationGracePeriodSeconds` adds the preStop pause and a margin to it)",
    chart: {
      in: "config",
      value: 20000,
      note: "The programs' drain deadline on SIGTERM (the worker's at least DB_STATEMENT_TIMEOUT_MS plus COMMAND_TIMEOUT_MS); the pods' grace period is derived from it.",
      required: true,
    },
  }),
  LOG_LEVEL: variable(oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]), {
    default: "info",
    meaning: "one JSON line per event, with the upload id",
    chart: { in: "config", value: "info" },
  }),
} satisfies Record<string, Variable>;

export type VariableName = keyof typeof VARIABLES;

/** Each variable's parsed value; undefined for an unset variable without a default. */
export type Env = { [K in VariableName]: z.output<(typeof VARIABLES)[K]["parser"]> };
