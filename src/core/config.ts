// Reads the environment once into one frozen, typed object; every problem is reported together.
// The variables themselves, with their defaults and meanings, are in config-variables.ts.
import { type Env, VARIABLES } from "./config-variables.ts";

export type Config = Readonly<{
  env: Env["NODE_ENV"];
  ports: Readonly<{ api: number; worker: number; controller: number }>;
  uploadDir: string;
  limits: Readonly<{
    maxUploadBytes: number;
    maxColumns: number;
    maxFieldBytes: number;
    /** Largest row, its fields' bytes added up; larger rows are row errors. */
    maxRowBytes: number;
    batchSize: number;
    /** Uploads of one tenant received, validating, queued or processing at once. */
    maxActiveUploadsPerTenant: number;
    /** Bodies this api process receives at once. */
    maxConcurrentUploads: number;
    /** How long a body may send nothing before it is cut off. */
    uploadIdleTimeoutMs: number;
    /** Batches of one upload published to RabbitMQ and not landed yet, at most. */
    maxBatchesInFlightPerUpload: number;
    /** How long a multipart body may take to reach its file part. */
    uploadFormTimeoutMs: number;
    /** Progress streams (server-sent events) this api process keeps open at once. */
    maxProgressStreams: number;
  }>;
  databaseUrl: string;
  /**
   * False: the schema is migrated apart (the chart's migration Job, `npm run migrate`), and
   * a program only checks that it is up to date, needing no more than DML rights.
   */
  migrateAtStart: boolean;
  /** Targets defined in a file, applied with the migrations (core/targets/targets-file.ts). */
  targetsFile: string | undefined;
  redisUrl: string;
  rabbitmqUrl: string;
  namespace: string;
  s3: Readonly<{
    bucket: string;
    region: string;
    /** Unset means AWS itself. */
    endpoint: string | undefined;
    credentials: Readonly<{ accessKeyId: string; secretAccessKey: string }> | undefined;
    /**
     * A missing bucket is made (by the migrations, and by each program at start) rather than
     * refused. CREATE_BUCKET; by default only outside production.
     */
    createBucket: boolean;
  }>;
  /** Key to tenant; undefined when authentication is off. */
  apiKeys: ReadonlyMap<string, string> | undefined;
  /** Finished uploads' data is purged this many days after they arrived; unset keeps it. */
  retentionDays: number | undefined;
  stuckAfterSeconds: number;
  controller: Readonly<{
    intervalSeconds: number;
    /** The Deployment that Kubernetes Events about stuck uploads are attached to. */
    workerDeployment: string;
    /** Unset: the namespace of the kubeconfig context or of the service account. */
    podNamespace: string | undefined;
    /** Unset: the host name, which in a pod is the pod's name. */
    podName: string | undefined;
  }>;
  worker: Readonly<{
    prefetch: number;
    maxAttempts: number;
    retryBaseMs: number;
    /** Longest one statement of a batch may run before the batch is retried. */
    statementTimeoutMs: number;
  }>;
  /** How long PostgreSQL, Redis, RabbitMQ and S3 may stay silent before Sluice gives up on them. */
  timeouts: Readonly<{
    /** To accept a connection and answer its handshake. */
    connectMs: number;
    /** To answer one query, command, publish or request. */
    commandMs: number;
  }>;
  shutdownTimeoutMs: number;
  logLevel: Env["LOG_LEVEL"];
}>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

const DEVELOPMENT_S3 = {
  endpoint: "http://127.0.0.1:4566",
  accessKeyId: "test",
  secretAccessKey: "test",
};

/** The names of every variable the configuration reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(VARIABLES);

/**
 * Parses each variable on its own: zod's object parse yields no data once any field fails,
 * and the rules that span variables need the valid ones to be reported in the same message.
 */
function parseVariables(present: Record<string, string | undefined>) {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, variable] of Object.entries(VARIABLES)) {
    const parsed = variable.parser.safeParse(present[name] ?? variable.default);
    if (parsed.success) values[name] = parsed.data;
    else problems.push(...parsed.error.issues.map((issue) => `${name} ${issue.message}`));
  }
  return { env: values as Partial<Env>, problems };
}

export type LoadOptions = Readonly<{
  /** False for programs that serve no uploads (worker, controller): they never read keys. */
  needsApiKeys?: boolean;
}>;

export function loadConfig(
  source: Record<string, string | undefined>,
  options: LoadOptions = {},
): Config {
  // An empty variable means "not set", as in most shells' .env handling.
  const present = Object.fromEntries(
    CONFIG_VARIABLES.map((name) => [name, source[name] === "" ? undefined : source[name]]),
  );
  const { env: valid, problems } = parseVariables(present);
  const production = valid.NODE_ENV === "production";

  const endpoint = valid.AWS_ENDPOINT ?? (production ? undefined : DEVELOPMENT_S3.endpoint);
  const accessKeyId =
    valid.AWS_ACCESS_KEY_ID ?? (production ? undefined : DEVELOPMENT_S3.accessKeyId);
  const secretAccessKey =
    valid.AWS_SECRET_ACCESS_KEY ?? (production ? undefined : DEVELOPMENT_S3.secretAccessKey);
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    problems.push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
  }
  const needsApiKeys = options.needsApiKeys ?? true;
  if (
    needsApiKeys &&
    production &&
    present.API_KEYS === undefined &&
    valid.AUTH_DISABLED === false
  ) {
    problems.push("API_KEYS is missing (set AUTH_DISABLED=true to run without authentication)");
  }
  if (problems.length > 0) throw new ConfigError(`Invalid environment: ${problems.join("; ")}`);
  const env = valid as Env;

  return Object.freeze({
    env: env.NODE_ENV,
    ports: Object.freeze({
      api: env.PORT,
      worker: env.WORKER_PORT,
      controller: env.CONTROLLER_PORT,
    }),
    uploadDir: env.UPLOAD_DIR,
    limits: Object.freeze({
      maxUploadBytes: env.MAX_UPLOAD_BYTES,
      maxColumns: env.MAX_COLUMNS,
      maxFieldBytes: env.MAX_FIELD_BYTES,
      maxRowBytes: env.MAX_ROW_BYTES,
      batchSize: env.BATCH_SIZE,
      maxActiveUploadsPerTenant: env.MAX_ACTIVE_UPLOADS_PER_TENANT,
      maxConcurrentUploads: env.MAX_CONCURRENT_UPLOADS,
      uploadIdleTimeoutMs: env.UPLOAD_IDLE_TIMEOUT_MS,
      maxBatchesInFlightPerUpload: env.MAX_BATCHES_IN_FLIGHT_PER_UPLOAD,
      uploadFormTimeoutMs: env.UPLOAD_FORM_TIMEOUT_MS,
      maxProgressStreams: env.MAX_PROGRESS_STREAMS,
    }),
    databaseUrl: env.DATABASE_URL,
    migrateAtStart: env.MIGRATE_AT_START,
    targetsFile: env.TARGETS_FILE,
    redisUrl: env.REDIS_URL,
    rabbitmqUrl: env.RABBITMQ_URL,
    namespace: env.SLUICE_NAMESPACE,
    s3: Object.freeze({
      bucket: env.S3_BUCKET,
      region: env.AWS_REGION,
      endpoint,
      credentials:
        accessKeyId && secretAccessKey
          ? Object.freeze({ accessKeyId, secretAccessKey })
          : undefined,
      createBucket: env.CREATE_BUCKET ?? env.NODE_ENV !== "production",
    }),
    apiKeys: env.AUTH_DISABLED ? undefined : env.API_KEYS,
    retentionDays: env.RETENTION_DAYS,
    stuckAfterSeconds: env.STUCK_AFTER_SECONDS,
    controller: Object.freeze({
      intervalSeconds: env.CONTROLLER_INTERVAL_SECONDS,
      workerDeployment: env.WORKER_DEPLOYMENT,
      podNamespace: env.POD_NAMESPACE,
      podName: env.POD_NAME,
    }),
    worker: Object.freeze({
      prefetch: env.WORKER_PREFETCH,
      maxAttempts: env.MAX_ATTEMPTS,
      retryBaseMs: env.RETRY_BASE_MS,
      statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
    }),
    timeouts: Object.freeze({
      connectMs: env.CONNECT_TIMEOUT_MS,
      commandMs: env.COMMAND_TIMEOUT_MS,
    }),
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    logLevel: env.LOG_LEVEL,
  });
}
