// Assembles the controller: every interval, while it holds the lease (or when there is no
// cluster at all), it finds stuck uploads and reports them once per episode.
import type { AddressInfo } from "node:net";
import { homedir, hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import { type QueueStat, readQueueStats } from "../core/broker/queue-stats.ts";
import type { Db } from "../core/db/database.ts";
import {
  ABANDONED_INTAKE_SECONDS,
  clearStalled,
  countUnfinished,
  failUnpublishable,
  findWatchedUploads,
  markStalled,
  rejectAbandoned,
  UNFINISHED_STATUSES,
} from "../core/db/uploads.repository.ts";
import type { Logger } from "../core/logger.ts";
import { type ControllerMetrics, createMetrics } from "../core/metrics.ts";
import { brokerReadiness, startOpsServer } from "../core/program/ops-server.ts";
import type { Program, ProgramRuntime, RunningProgram } from "../core/program/program.ts";
import type { StatusStore } from "../core/status/status-store.ts";
import { purgeDue } from "../core/uploads/purge.ts";
import { createKubeReporter, type KubeReporter } from "./kube-reporter.ts";
import { contextNamespace, findKubeConfig, kubeClients } from "./kubernetes.ts";
import { createLeaderElector, type LeaderElector } from "./leader-election.ts";
import {
  assessUploads,
  CAUSE_DESCRIPTIONS,
  describeRecovered,
  describeStuck,
  type StuckUpload,
  type WatchedUpload,
} from "./stuck-uploads.ts";

export type Controller = Readonly<{
  /** Finishes the check in progress and gives up the lease. */
  stop(): Promise<void>;
}>;

export type ControllerDeps = Readonly<{
  db: Db;
  status: StatusStore;
  queues: () => Promise<QueueStat[]>;
  stuckAfterSeconds: number;
  intervalSeconds: number;
  /** Finishes requested purges and, with RETENTION_DAYS, purges expired uploads. */
  purgeDue: () => Promise<string[]>;
  /** Absent without a cluster: every replica checks, and reports through status, logs and metrics. */
  kube: Readonly<{ elector: LeaderElector; reporter: KubeReporter }> | undefined;
  metrics: ControllerMetrics;
  log: Logger;
}>;

export function runController(deps: ControllerDeps): Controller {
  const { db, status, metrics, log, kube } = deps;
  const stopping = new AbortController();

  async function reportStuck(stuck: StuckUpload): Promise<void> {
    const { upload } = stuck;
    const message = describeStuck(stuck);
    log.warn(
      { uploadId: upload.id, stuckForSeconds: stuck.stuckForSeconds, cause: stuck.cause },
      message,
    );
    // The Event first: should the flag then fail, the next check reports again under the
    // same Event name, which the API server refuses as a duplicate.
    await kube?.reporter.report({
      type: "Warning",
      reason: "UploadStuck",
      uploadId: upload.id,
      episode: upload.lastProgressAt.getTime(),
      message,
    });
    if (await markStalled(db, upload.id, CAUSE_DESCRIPTIONS[stuck.cause]))
      await status.refresh(upload.id);
    metrics.stuckReports.inc({ reason: "UploadStuck" });
  }

  async function reportRecovered(upload: WatchedUpload): Promise<void> {
    const message = describeRecovered(upload);
    log.info({ uploadId: upload.id, status: upload.status }, message);
    await kube?.reporter.report({
      type: "Normal",
      reason: "UploadRecovered",
      uploadId: upload.id,
      episode: upload.lastProgressAt.getTime(),
      message,
    });
    if (await clearStalled(db, upload.id)) await status.refresh(upload.id);
    metrics.stuckReports.inc({ reason: "UploadRecovered" });
  }

  /** Ends the uploads whose api stopped while their body arrived; nobody else would. */
  async function endAbandoned(): Promise<void> {
    for (const uploadId of await rejectAbandoned(db, ABANDONED_INTAKE_SECONDS)) {
      metrics.uploadsFinished.inc({ status: "rejected" });
      log.warn({ uploadId }, "the api stopped while receiving this upload's body; upload rejected");
      await status
        .refresh(uploadId)
        .catch((err: Error) =>
          log.warn({ uploadId, err: err.message }, "could not refresh the upload's status"),
        );
    }
  }

  /**
   * Ends the uploads with batches left to publish that no api has published for as long as an
   * abandoned body: a replica holding their stored batches takes them over well within that,
   * so none holds them any more (the api's folder went with its pod).
   */
  async function endUnpublishable(): Promise<void> {
    for (const uploadId of await failUnpublishable(db, ABANDONED_INTAKE_SECONDS)) {
      metrics.uploadsFinished.inc({ status: "failed" });
      log.warn({ uploadId }, "no api has this upload's stored batches to publish; upload failed");
      await status
        .refresh(uploadId)
        .catch((err: Error) =>
          log.warn({ uploadId, err: err.message }, "could not refresh the upload's status"),
        );
    }
  }

  async function check(): Promise<void> {
    await endAbandoned();
    await endUnpublishable();
    const rows = await findWatchedUploads(db);
    const stats = await deps.queues().catch((err: Error) => {
      log.warn({ err: err.message }, "could not read the queues; causes will be less precise");
      return undefined;
    });
    const assessment = assessUploads(
      rows.map((row) => ({
        id: row.id,
        status: row.status,
        lastProgressAt: new Date(row.last_progress_at),
        batchesTotal: row.batches_total,
        batchesPublished: row.batches_published,
        batchesLanded: row.batches_landed,
        stalled: row.stalled,
      })),
      {
        consumers: stats?.find((s) => s.kind === "work")?.consumers,
        deadLetters: stats?.find((s) => s.kind === "dead_letter")?.messages,
      },
      new Date(),
      deps.stuckAfterSeconds,
    );
    // One upload's failed report must not hold back the others; it is retried next time.
    const attempt = async (uploadId: string, report: () => Promise<void>) =>
      report().catch((err: Error) =>
        log.error({ uploadId, err: err.message }, "could not report an upload"),
      );
    for (const stuck of assessment.newlyStuck)
      await attempt(stuck.upload.id, () => reportStuck(stuck));
    for (const upload of assessment.recovered)
      await attempt(upload.id, () => reportRecovered(upload));
    metrics.uploadsStuck.set(assessment.newlyStuck.length + assessment.stillStuck.length);

    const unfinished = await countUnfinished(db);
    for (const state of UNFINISHED_STATUSES)
      metrics.uploadsInProgress.set({ status: state }, unfinished.get(state) ?? 0);

    const purged = await deps.purgeDue().catch((err: Error) => {
      log.error({ err: err.message }, "could not purge; the next pass tries again");
      return [];
    });
    for (const uploadId of purged) {
      log.info({ uploadId }, "upload data purged");
      await status.refresh(uploadId).catch(() => undefined);
    }
  }

  let leading = false;
  async function tick(): Promise<void> {
    if (kube) {
      const was = leading;
      leading = await kube.elector.acquireOrRenew().catch((err: Error) => {
        log.warn({ err: err.message }, "could not renew the lease; not reporting until it can");
        return false;
      });
      if (leading !== was) {
        log.info(
          leading ? "leading: reporting stuck uploads" : "another replica leads: not reporting",
        );
      }
    } else {
      leading = true;
    }
    metrics.leader.set(leading ? 1 : 0);
    if (!leading) {
      // Only the leader's gauges count; the others show none rather than stale ones.
      metrics.uploadsStuck.reset();
      metrics.uploadsInProgress.reset();
      return;
    }
    await check();
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await tick().catch((err: Error) =>
        log.error({ err: err.message }, "stuck-upload check failed"),
      );
      await sleep(deps.intervalSeconds * 1000, undefined, { signal: stopping.signal }).catch(
        () => undefined,
      );
    }
  })();

  return {
    async stop() {
      stopping.abort();
      await loop;
      await kube?.elector
        .release()
        .catch((err: Error) => log.warn({ err: err.message }, "could not release the lease"));
    },
  };
}

export type ControllerOptions = Readonly<{
  /** The cluster it reports to, none for none; else the one KUBECONFIG, ~/.kube/config or its pod give. */
  kubeConfig?: KubeConfig | undefined;
}>;

/** The controller program: with a cluster when it finds one, else without. */
export async function start(
  runtime: ProgramRuntime,
  options: ControllerOptions = {},
): Promise<RunningProgram> {
  const { config, log, shutdown } = runtime;
  const kubeConfig =
    "kubeConfig" in options ? options.kubeConfig : findKubeConfig(runtime.env, homedir());
  const metrics = createMetrics("controller");
  const queues = () => readQueueStats(runtime.broker, config.namespace);
  metrics.watchQueues(queues);
  let kube: ControllerDeps["kube"];
  if (kubeConfig) {
    const clients = kubeClients(kubeConfig);
    const namespace = config.controller.podNamespace ?? contextNamespace(kubeConfig) ?? "default";
    const identity = config.controller.podName ?? hostname();
    kube = {
      elector: createLeaderElector({
        api: clients.coordination,
        namespace,
        leaseName: `${config.namespace}-controller`,
        identity,
        // Three checks may fail to renew before another replica takes over.
        leaseDurationSeconds: Math.max(15, 3 * config.controller.intervalSeconds),
      }),
      reporter: createKubeReporter({
        core: clients.core,
        apps: clients.apps,
        namespace,
        workerDeployment: config.controller.workerDeployment,
        instance: identity,
      }),
    };
    log.info(
      { namespace, identity, deployment: config.controller.workerDeployment },
      "reporting stuck uploads as Kubernetes Events while holding the lease",
    );
  } else {
    log.info(
      "no Kubernetes cluster (no KUBECONFIG, ~/.kube/config or service account): reporting stuck uploads through status, logs and metrics only",
    );
  }
  const controller = runController({
    db: runtime.db,
    status: runtime.status,
    queues,
    stuckAfterSeconds: config.stuckAfterSeconds,
    intervalSeconds: config.controller.intervalSeconds,
    purgeDue: () =>
      purgeDue({ db: runtime.db, s3: runtime.s3, bucket: config.s3.bucket }, config.retentionDays),
    kube,
    metrics,
    log,
  });
  shutdown.add("drain", "controller", controller.stop);
  const ops = await startOpsServer(config.ports.controller, runtime.host, {
    registry: metrics.registry,
    readiness: brokerReadiness(runtime.broker),
  });
  shutdown.add("close", "ops server", ops.close);
  log.info({ port: (ops.server.address() as AddressInfo).port }, "controller running");
  return { url: ops.url, stop: () => shutdown.run("stopped") };
}

export const controllerProgram: Program = {
  name: "controller",
  needs: {},
  start: (runtime) => start(runtime),
};
