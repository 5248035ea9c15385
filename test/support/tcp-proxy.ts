// A TCP proxy in front of a real service, so a test can cut the network between Sluice and
// PostgreSQL or Redis (connections reset, new ones refused) or turn it into a black hole
// (connections accepted, nothing ever answered), and restore it, while the service itself
// keeps running for every other test.
import { once } from "node:events";
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type TcpProxy = Readonly<{
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  /** Resets every connection and refuses new ones. */
  cut(): Promise<void>;
  /**
   * From now on nothing reaches the service and nothing comes back: bytes on the open
   * connections are swallowed, new connections are accepted and then never answered.
   */
  stall(): void;
  /**
   * Resolves once Sluice sends the stalled service something: the request it is now waiting
   * for an answer to.
   */
  sent(): Promise<void>;
  /** Forwards again, on the same port; connections that were stalled are reset. */
  restore(): Promise<void>;
  close(): Promise<void>;
}>;

/** Reads and drops everything, as a peer that has stopped answering but still holds on. */
function swallow(socket: Socket, heard: () => void = () => undefined): void {
  socket.unpipe();
  socket.removeAllListeners("data");
  socket.on("data", heard);
  socket.resume();
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  /** Sluice's side of each connection. */
  const clients = new WeakSet<Socket>();
  let stalled = false;
  let waiting: Array<() => void> = [];
  const heard = () => {
    for (const wake of waiting) wake();
    waiting = [];
  };
  const swallowAll = (socket: Socket) => swallow(socket, clients.has(socket) ? heard : undefined);
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
      track(client);
      clients.add(client);
      if (stalled) {
        swallowAll(client);
        return;
      }
      const upstream = createConnection(target);
      track(upstream);
      client.on("close", () => upstream.destroy());
      // Once stalled, the service closing its side (for the missed heartbeats, say) must not
      // reach the client: a black hole tells the client nothing at all.
      upstream.on("close", () => {
        if (!stalled) client.destroy();
      });
      client.pipe(upstream);
      upstream.pipe(client);
    });

  let server = makeServer();
  await listen(server, 0);
  const { port } = server.address() as { port: number };
  const resetAll = () => {
    for (const socket of sockets) socket.resetAndDestroy();
  };
  const stop = async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    resetAll();
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
    stall() {
      stalled = true;
      for (const socket of sockets) swallowAll(socket);
    },
    sent: () => new Promise((resolve) => waiting.push(resolve)),
    async restore() {
      if (stalled) {
        stalled = false;
        resetAll();
      }
      if (!server.listening) {
        server = makeServer();
        await listen(server, port);
      }
    },
    async close() {
      stalled = false;
      if (server.listening) await stop();
    },
  };
}

/** A service that accepts connections and never says anything, at `url`'s scheme. */
export async function startBlackHole(): Promise<
  Readonly<{ port: number; at(url: string): string; close(): Promise<void> }>
> {
  const held = new Set<Socket>();
  const server = createServer((socket) => {
    held.add(socket);
    socket.on("close", () => held.delete(socket));
    socket.on("error", () => socket.destroy());
    swallow(socket);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return {
    port,
    at(url) {
      const moved = new URL(url);
      moved.hostname = "127.0.0.1";
      moved.port = String(port);
      return moved.toString();
    },
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of held) socket.resetAndDestroy();
      await closed;
    },
  };
}
