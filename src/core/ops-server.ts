// The small HTTP server of the programs that have no API of their own: health and metrics.
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export type OpsServer = Readonly<{ server: Server; close(): Promise<void> }>;

export async function startOpsServer(
  port: number,
  registry: Registry,
  ready: () => Promise<boolean>,
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
      ready().then(
        (ok) => reply(ok ? 200 : 503, JSON.stringify({ status: ok ? "ready" : "not ready" })),
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
