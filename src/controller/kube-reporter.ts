// Reports stuck and recovered uploads as Kubernetes Events on the worker Deployment, where
// `kubectl describe deployment` and every cluster event pipeline already look.
import type { AppsV1Api, CoreV1Api, CoreV1Event, V1ObjectReference } from "@kubernetes/client-node";
import { statusOf } from "./kubernetes.ts";

export type UploadEvent = Readonly<{
  type: "Warning" | "Normal";
  reason: "UploadStuck" | "UploadRecovered";
  uploadId: string;
  /** Names the episode (the upload's last progress, in ms): a retry of one report repeats it. */
  episode: number;
  message: string;
}>;

export type KubeReporter = Readonly<{ report(event: UploadEvent): Promise<void> }>;

export type KubeReporterOptions = Readonly<{
  core: CoreV1Api;
  apps: AppsV1Api;
  namespace: string;
  workerDeployment: string;
  /** This replica, as Events name their reporter. */
  instance: string;
  now?: () => number;
}>;

const COMPONENT = "sluice-controller";

export function createKubeReporter(options: KubeReporterOptions): KubeReporter {
  const { core, apps, namespace, workerDeployment } = options;
  const now = options.now ?? Date.now;

  async function involvedObject(): Promise<V1ObjectReference> {
    const reference = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: workerDeployment,
      namespace,
    };
    try {
      const deployment = await apps.readNamespacedDeployment({ name: workerDeployment, namespace });
      // With the uid, the Event follows this Deployment and not a later one of the same name.
      return { ...reference, uid: deployment.metadata?.uid };
    } catch (err) {
      // No Deployment of that name (check WORKER_DEPLOYMENT), or one the Role does not let
      // the controller read, which under the chart's Role is any other name (403): the
      // Event still says what it is about, and the report is not lost.
      const status = statusOf(err);
      if (status === 404 || status === 403) return reference;
      throw err;
    }
  }

  return {
    async report(event) {
      const at = new Date(now());
      const body: CoreV1Event = {
        apiVersion: "v1",
        kind: "Event",
        metadata: {
          // The same report made twice (the controller stopped between the Event and the
          // flag) has the same name, and the second create fails with 409 instead of repeating.
          name: `${workerDeployment}.${event.uploadId}.${event.reason.toLowerCase()}.${event.episode.toString(16)}`,
          namespace,
        },
        involvedObject: await involvedObject(),
        type: event.type,
        reason: event.reason,
        message: event.message,
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: options.instance,
      };
      try {
        await core.createNamespacedEvent({ namespace, body });
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
    },
  };
}
