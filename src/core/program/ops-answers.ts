// /healthz, /readyz and /metrics, answered the same way by every program: the api among its
// routes, the worker and the controller on a small server of their own (ops-server.ts).
import type { Registry } from "prom-client";
import type { Dependency } from "../dependencies.ts";

export const OPS_PATHS: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"]);

/** What /readyz answers: 200 when ready, else 503 saying why (the silent dependencies). */
export type Readiness =
  | { status: "ready" }
  | { status: "stopping" }
  | { status: "not ready"; unavailable?: string[] };

export type Ops = Readonly<{
  registry: Registry;
  /** `verbose`: /readyz?verbose, which the api answers with the services every replica shares. */
  readiness(verbose: boolean): Promise<Readiness>;
}>;

export type OpsAnswer = Readonly<{
  status: number;
  /** JSON unless `type` says otherwise. */
  body: string;
  type?: string;
  headers?: Record<string, string>;
}>;

const json = (status: number, body: unknown): OpsAnswer => ({
  status,
  body: JSON.stringify(body),
});

/** The readiness of a program that needs every dependency `unanswered` checks. */
export const readyWhenAnswered =
  (unanswered: () => Promise<readonly Dependency[]>) => async (): Promise<Readiness> => {
    const unavailable = await unanswered();
    return unavailable.length === 0
      ? { status: "ready" }
      : { status: "not ready", unavailable: [...unavailable] };
  };

/** The answer to a request for one of OPS_PATHS; undefined for any other path. */
export async function answerOps(
  method: string,
  path: string,
  verbose: boolean,
  ops: Ops,
): Promise<OpsAnswer | undefined> {
  if (!OPS_PATHS.has(path)) return undefined;
  if (method !== "GET" && method !== "HEAD") {
    return {
      ...json(405, {
        error: { code: "MethodNotAllowed", message: `${method} is not allowed on ${path}` },
      }),
      headers: { allow: "HEAD, GET" },
    };
  }
  if (path === "/healthz") return json(200, { status: "ok" });
  if (path === "/readyz") {
    const readiness = await ops
      .readiness(verbose)
      .catch((): Readiness => ({ status: "not ready" }));
    return json(readiness.status === "ready" ? 200 : 503, readiness);
  }
  return { status: 200, body: await ops.registry.metrics(), type: ops.registry.contentType };
}
