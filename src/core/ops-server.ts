// The small HTTP server of the programs that have no API of their own: health and metrics.
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import type { Broker } from "./broker/broker.ts";
import type { Dependency } from "./dependencies.ts";

export type OpsServer = Readonly<{ server: Server; close(): Promise<void> }>;

/** The controller's readiness: only whether its RabbitMQ connection is up. */
export const brokerReadiness =
  (broker: Pick<Broker, "isConnected">) => async (): Promise<Dependency[]> =>
    broker.isConnected() ? [] : ["RabbitMQ"];

/**
 * /healthz says the process is alive; /readyz lists, as the api's does, the services that
 * `unanswered` found silent or out of reach.
 */
export async function startOpsServer(
  port: number,
  registry: Registry,
  unanswered: () => Promise<Dependency[]>,
): Promise<OpsServer> {
  const server = createServer((req, res) => {
    const reply = (status: number, body: string, type = "application/json") => {
      res.writeHead(status, { "content-type": type, "x-content-type-options": "nosniff" });
      res.end(body);
    };
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method !== "GET")
      return reply(405, '{"error":{"code":"MethodNotAllowed","message":"GET only"}}');
    if (path === "/healthz") return reply(200, '{"status":"ok"}');
    if (path === "/readyz") {
      unanswered().then(
        (unavailable) =>
          unavailable.length === 0
            ? reply(200, '{"status":"ready"}')
            : reply(503, JSON.stringify({ status: "not ready", unavailable })),
        () => reply(503, '{"status":"not ready"}'),
      );
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => reply(200, text, registry.contentType),
        () => reply(500, '{"error":{"code":"Internal","message":"metrics unavailable"}}'),
      );
      return;
    }
    reply(404, '{"error":{"code":"NotFound","message":"no such path"}}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, resolve);
  });
  return {
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
