// Every Prometheus metric Sluice exports, defined once. Each program has its own registry
// and its own typed set; no label ever holds an upload id, so cardinality stays fixed.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { QueueStat } from "./broker/queue-stats.ts";

export function createRegistry(program: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ program });
  collectDefaultMetrics({ register: registry, prefix: "sluice_" });
  return registry;
}

export const FINAL_STATUSES = ["completed", "failed", "rejected", "cancelled"] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];

export const BATCH_OUTCOMES = [
  "landed",
  "duplicate",
  "retried",
  "dead_lettered",
  "skipped",
] as const;
export type BatchOutcome = (typeof BATCH_OUTCOMES)[number];

/** Each program counts the final statuses it decides; Prometheus adds them up. */
function uploadsFinished(registry: Registry, statuses: FinalStatus[]) {
  const counter = new Counter({
    name: "sluice_uploads_total",
    help: "Uploads that reached a final status",
    labelNames: ["status"] as const,
    registers: [registry],
  });
  // Present from the start, so that rate() sees the first upload of each status.
  for (const status of statuses) counter.inc({ status }, 0);
  return counter;
}

const seconds = (name: string, help: string, registry: Registry, buckets: number[]) =>
  new Histogram({ name, help, buckets, registers: [registry] });

const STAGE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const UPLOAD_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];

function apiMetrics(registry: Registry) {
  return {
    uploadsFinished: uploadsFinished(registry, ["rejected", "cancelled", "failed"]),
    bytesReceived: new Counter({
      name: "sluice_upload_bytes_received_total",
      help: "Bytes of upload bodies received",
      registers: [registry],
    }),
    rowsPublished: new Counter({
      name: "sluice_rows_published_total",
      help: "Rows published to RabbitMQ and confirmed",
      registers: [registry],
    }),
    batchesPublished: new Counter({
      name: "sluice_batches_published_total",
      help: "Batches published to RabbitMQ and confirmed",
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: "sluice_http_requests_total",
      help: "HTTP requests answered, by route pattern and status code",
      labelNames: ["method", "route", "code"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "sluice_http_request_duration_seconds",
      help: "Time to answer an HTTP request (to the first byte of a streamed body)",
      labelNames: ["method", "route"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    uploadsReceiving: new Gauge({
      name: "sluice_uploads_receiving",
      help: "Upload bodies this api process is receiving",
      registers: [registry],
    }),
    progressStreams: new Gauge({
      name: "sluice_progress_streams",
      help: "Open server-sent event streams of upload progress",
      registers: [registry],
    }),
    uploadsHeld: new Gauge({
      name: "sluice_uploads_publishing_held",
      help: "Uploads whose publishing waits for their published batches to land",
      registers: [registry],
    }),
  };
}

function workerMetrics(registry: Registry) {
  const batchesConsumed = new Counter({
    name: "sluice_batches_consumed_total",
    help: "Batch deliveries handled, by outcome",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  for (const outcome of BATCH_OUTCOMES) batchesConsumed.inc({ outcome }, 0);
  return {
    uploadsFinished: uploadsFinished(registry, ["completed", "failed"]),
    batchesConsumed,
    batchesInFlight: new Gauge({
      name: "sluice_worker_batches_in_flight",
      help: "Batches a worker holds and has not acknowledged yet",
      registers: [registry],
    }),
    rowsLanded: new Counter({
      name: "sluice_rows_landed_total",
      help: "Rows landed in PostgreSQL",
      registers: [registry],
    }),
    rowErrors: new Counter({
      name: "sluice_row_errors_total",
      help: "Rejected rows recorded in PostgreSQL",
      registers: [registry],
    }),
    s3PutSeconds: seconds(
      "sluice_s3_put_duration_seconds",
      "Time to put one batch's JSON in S3",
      registry,
      STAGE_BUCKETS,
    ),
    dbInsertSeconds: seconds(
      "sluice_db_insert_duration_seconds",
      "Time of the transaction that lands one batch's rows in PostgreSQL",
      registry,
      STAGE_BUCKETS,
    ),
    batchSeconds: seconds(
      "sluice_batch_duration_seconds",
      "Time from taking a batch to acknowledging it, whatever the outcome",
      registry,
      STAGE_BUCKETS,
    ),
    uploadSeconds: seconds(
      "sluice_upload_duration_seconds",
      "Time from receiving an upload to its last row landing",
      registry,
      UPLOAD_BUCKETS,
    ),
  };
}

function controllerMetrics(registry: Registry) {
  let readQueues: (() => Promise<QueueStat[]>) | undefined;
  let current: Promise<QueueStat[] | undefined> | undefined;
  // A scrape collects every gauge at once, so both queue gauges share one look at the queues.
  const queues = () => {
    current ??= (readQueues?.() ?? Promise.resolve(undefined))
      .catch(() => undefined)
      .finally(() => {
        current = undefined;
      });
    return current;
  };
  const queueGauge = (name: string, help: string, value: (stat: QueueStat) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["queue", "kind"] as const,
      registers: [registry],
      async collect() {
        const stats = await queues();
        // Without a fresh reading there is no value, rather than a stale one.
        this.reset();
        for (const stat of stats ?? [])
          this.set({ queue: stat.queue, kind: stat.kind }, value(stat));
      },
    });
  const reports = new Counter({
    name: "sluice_stuck_upload_reports_total",
    help: "Stuck and recovered uploads reported, by reason",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  for (const reason of ["UploadStuck", "UploadRecovered"]) reports.inc({ reason }, 0);
  return {
    /** Uploads it ends: bodies whose api stopped, batches no api holds any more. */
    uploadsFinished: uploadsFinished(registry, ["rejected", "failed"]),
    /** Where the queue gauges read from at each scrape. */
    watchQueues(read: () => Promise<QueueStat[]>) {
      readQueues = read;
    },
    queueMessages: queueGauge(
      "sluice_queue_messages",
      "Messages ready in a queue, read at scrape time",
      (stat) => stat.messages,
    ),
    queueConsumers: queueGauge(
      "sluice_queue_consumers",
      "Consumers of a queue, read at scrape time",
      (stat) => stat.consumers,
    ),
    uploadsStuck: new Gauge({
      name: "sluice_uploads_stuck",
      help: "Uploads flagged stalled at the last check",
      registers: [registry],
    }),
    uploadsInProgress: new Gauge({
      name: "sluice_uploads_in_progress",
      help: "Uploads not yet in a final status, by status, at the last check",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: "sluice_controller_leader",
      help: "1 when this controller holds the lease and reports, else 0",
      registers: [registry],
    }),
    stuckReports: reports,
  };
}

const PROGRAMS = { api: apiMetrics, worker: workerMetrics, controller: controllerMetrics };

export type Program = keyof typeof PROGRAMS;
export type ProgramMetrics<P extends Program> = ReturnType<(typeof PROGRAMS)[P]> &
  Readonly<{ registry: Registry }>;
export type ApiMetrics = ProgramMetrics<"api">;
export type WorkerMetrics = ProgramMetrics<"worker">;
export type ControllerMetrics = ProgramMetrics<"controller">;

/** A program's registry, with the process metrics and the program's own metric set. */
export function createMetrics<P extends Program>(program: P): ProgramMetrics<P> {
  const registry = createRegistry(program);
  return { ...(PROGRAMS[program](registry) as ReturnType<(typeof PROGRAMS)[P]>), registry };
}
