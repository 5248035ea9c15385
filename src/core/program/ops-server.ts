// The small HTTP server of the programs that have no API of their own: health and metrics.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Broker } from "../broker/broker.ts";
import { answerOps, type Ops, type Readiness } from "./ops-answers.ts";

export type OpsServer = Readonly<{ server: Server; url: string; close(): Promise<void> }>;

/** The controller's readiness: only whether its RabbitMQ connection is up. */
export const brokerReadiness =
  (broker: Pick<Broker, "isConnected">) => async (): Promise<Readiness> =>
    broker.isConnected() ? { status: "ready" } : { status: "not ready", unavailable: ["RabbitMQ"] };

const NOT_FOUND = '{"error":{"code":"NotFound","message":"no such path"}}';
const UNAVAILABLE = '{"error":{"code":"Internal","message":"metrics unavailable"}}';

/** Listens on `port` of `host` (every interface unless given). */
export async function startOpsServer(
  port: number,
  host: string | undefined,
  ops: Ops,
): Promise<OpsServer> {
  const server = createServer((req, res) => {
    const reply = (
      status: number,
      body: string,
      type = "application/json",
      headers: Record<string, string> = {},
    ) => {
      res.writeHead(status, {
        ...headers,
        "content-type": type,
        "x-content-type-options": "nosniff",
      });
      res.end(body);
    };
    const url = new URL(req.url ?? "/", "http://localhost");
    answerOps(req.method ?? "GET", url.pathname, url.searchParams.has("verbose"), ops).then(
      (answer) =>
        answer
          ? reply(answer.status, answer.body, answer.type, answer.headers)
          : reply(404, NOT_FOUND),
      () => reply(500, UNAVAILABLE),
    );
  });
  server.listen(port, host);
  await once(server, "listening");
  const { port: listening } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${listening}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
