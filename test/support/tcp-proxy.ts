// A TCP proxy in front of a real service, so a test can cut the network between Sluice and
// PostgreSQL or Redis (connections reset, new ones refused) and restore it, while the
// service itself keeps running for every other test.
import { once } from "node:events";
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type TcpProxy = Readonly<{
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  /** Resets every connection and refuses new ones. */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}>;

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const listen = async (server: Server, port: number) => {
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
  };
  const makeServer = () =>
    createServer((client) => {
      const upstream = createConnection(target);
      track(client);
      track(upstream);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });

  let server = makeServer();
  await listen(server, 0);
  const { port } = server.address() as { port: number };
  const stop = async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.resetAndDestroy();
    await closed;
  };

  return {
    via(url) {
      const proxied = new URL(url);
      proxied.hostname = "127.0.0.1";
      proxied.port = String(port);
      return proxied.toString();
    },
    cut: stop,
    async restore() {
      server = makeServer();
      await listen(server, port);
    },
    async close() {
      if (server.listening) await stop();
    },
  };
}
