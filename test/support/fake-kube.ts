// A small Kubernetes API server on 127.0.0.1 for the controller's tests: it keeps Leases,
// Events and Deployments the way the real one does (resourceVersion conflicts included)
// and records every request, so the real client is tested without a cluster.
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export type KubeRequest = Readonly<{
  verb: string;
  group: string;
  resource: string;
  namespace: string | undefined;
  name: string | undefined;
  authorization: string | undefined;
  body: any;
}>;

type KubeObject = {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string };
};

/** A core/v1 Event as the server stored it: JSON, so timestamps are strings. */
export type StoredEvent = KubeObject & {
  type: string;
  reason: string;
  message: string;
  involvedObject: Record<string, string>;
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  count: number;
};

/** What an Event about the Deployment `name` (uid `uid`, when known) in `namespace` involves. */
export const deploymentInvolved = (namespace: string, name: string, uid?: string) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  name,
  namespace,
  ...(uid === undefined ? {} : { uid }),
});

export type FakeKube = Readonly<{
  url: string;
  requests: KubeRequest[];
  objects(resource: "leases" | "deployments"): KubeObject[];
  events(): StoredEvent[];
  /** The next request of this verb on this resource fails with 409 Conflict. */
  conflictOnce(verb: string, resource: string): void;
  /** A KubeConfig, loaded from an object, pointing at this server. */
  kubeConfig(namespace?: string): KubeConfig;
  close(): Promise<void>;
}>;

// /api/v1/namespaces/ns/events[/name] and /apis/group/version/namespaces/ns/leases[/name]
const PATH =
  /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?\/?$/;

const VERBS: Record<string, (named: boolean) => string> = {
  GET: (named) => (named ? "get" : "list"),
  POST: () => "create",
  PUT: () => "update",
  PATCH: () => "patch",
  DELETE: (named) => (named ? "delete" : "deletecollection"),
};

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(
    JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code }),
  );
}

export async function startFakeKube(
  options: { deployments?: Array<{ namespace: string; name: string; uid: string }> } = {},
): Promise<FakeKube> {
  const requests: KubeRequest[] = [];
  const store = new Map<string, Map<string, KubeObject>>();
  const conflicts = new Set<string>();
  let version = 100;
  const bucket = (resource: string) => {
    const objects = store.get(resource) ?? new Map<string, KubeObject>();
    store.set(resource, objects);
    return objects;
  };
  for (const d of options.deployments ?? []) {
    bucket("deployments").set(`${d.namespace}/${d.name}`, {
      metadata: {
        name: d.name,
        namespace: d.namespace,
        uid: d.uid,
        resourceVersion: String(version++),
      },
    });
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const match = PATH.exec(url.pathname);
    const body = await readJson(req);
    if (!match) return status(res, 404, "NotFound", `no route ${url.pathname}`);
    const [, group = "", namespace, resource = "", name] = match;
    const verb = VERBS[req.method ?? ""]?.(name !== undefined) ?? (req.method ?? "").toLowerCase();
    requests.push({
      verb,
      group,
      resource,
      namespace,
      name,
      authorization: req.headers.authorization,
      body,
    });

    if (conflicts.delete(`${verb} ${resource}`)) {
      return status(
        res,
        409,
        "Conflict",
        "the object has been modified; please apply your changes to the latest version",
      );
    }
    const objects = bucket(resource);
    const send = (code: number, object: KubeObject) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(object));
    };
    if (verb === "get") {
      const found = objects.get(`${namespace}/${name}`);
      return found
        ? send(200, found)
        : status(res, 404, "NotFound", `${resource} "${name}" not found`);
    }
    if (verb === "create") {
      const object = body as KubeObject;
      const key = `${namespace}/${object.metadata.name}`;
      if (objects.has(key))
        return status(
          res,
          409,
          "AlreadyExists",
          `${resource} "${object.metadata.name}" already exists`,
        );
      const created = {
        ...object,
        metadata: {
          ...object.metadata,
          namespace,
          uid: randomUUID(),
          resourceVersion: String(version++),
        },
      };
      objects.set(key, created);
      return send(201, created);
    }
    if (verb === "update") {
      const object = body as KubeObject;
      const current = objects.get(`${namespace}/${name}`);
      if (!current) return status(res, 404, "NotFound", `${resource} "${name}" not found`);
      if (object.metadata.resourceVersion !== current.metadata.resourceVersion) {
        return status(
          res,
          409,
          "Conflict",
          "the object has been modified; please apply your changes to the latest version",
        );
      }
      const updated = {
        ...object,
        metadata: { ...object.metadata, resourceVersion: String(version++) },
      };
      objects.set(`${namespace}/${name}`, updated);
      return send(200, updated);
    }
    status(res, 405, "MethodNotAllowed", `${verb} is not served here`);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    objects: (resource) => [...bucket(resource).values()],
    events: () => [...bucket("events").values()] as StoredEvent[],
    conflictOnce: (verb, resource) => {
      conflicts.add(`${verb} ${resource}`);
    },
    kubeConfig(namespace = "sluice") {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions({
        // Plain HTTP on the loopback: the client refuses it unless TLS checks are off.
        clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
        users: [{ name: "sluice-controller", token: "fake-token" }],
        contexts: [{ name: "fake", cluster: "fake", user: "sluice-controller", namespace }],
        currentContext: "fake",
      });
      return kubeConfig;
    },
    async close() {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
