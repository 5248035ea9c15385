// PostgreSQL connections that give up on a server which keeps the connection open and says
// nothing. pg would wait for ever, and so would every query queued behind that one; pg's own
// query_timeout leaves the connection busy and in the pool. Here the connection is destroyed
// with an error that names the server, which fails the query, frees the pool's slot and
// tells the caller which dependency is at fault. A query that fails because the connection
// was lost (pg says so only in its message) fails with a DependencyLostError naming
// PostgreSQL, its cause pg's own error.
import type { Socket } from "node:net";
import pg from "pg";
import { DependencyLostError, DependencyTimeoutError, withinDeadline } from "../dependencies.ts";

export type Patience = Readonly<{
  /** To connect and answer the start-up handshake. */
  connectMs: number;
  /** To say something while a query is under way; undefined waits as long as it takes. */
  answerMs: number | undefined;
}>;

const SET_EXTRA_MS = Symbol("setExtraMs");

type Watched = { [SET_EXTRA_MS]?: (extraMs: number) => void };

function watch(client: pg.Client, url: string, patience: Patience): void {
  const internals = client as unknown as {
    connection: {
      stream: Socket;
      on(event: "message" | "end" | "error", listener: () => void): void;
    };
    /** True between the server's ReadyForQuery and the next query sent. */
    readyForQuery: boolean;
  };
  let connected = false;
  let ended = false;
  /** Set once the connection failed or ended other than by end(): no query can succeed. */
  let lost = false;
  let limit = patience.connectMs as number | undefined;
  let timer: NodeJS.Timeout | undefined;

  const expire = () => {
    // Idle: nothing is owed. A later query starts the wait again.
    if (ended || (connected && internals.readyForQuery)) return;
    internals.connection.stream.destroy(
      DependencyTimeoutError.silent("PostgreSQL", url, limit as number),
    );
  };
  const restart = (ms: number | undefined) => {
    clearTimeout(timer);
    timer = undefined;
    limit = ms;
  };
  /** An answer is owed from now; any message from the server starts the wait again. */
  const expect = () => {
    if (limit === undefined || ended) return;
    if (timer) {
      timer.refresh();
    } else {
      timer = setTimeout(expire, limit);
      timer.unref();
    }
  };

  internals.connection.on("message", () => timer?.refresh());
  // Heard before pg fails the queries in flight, which it does a tick later.
  internals.connection.on("error", () => {
    lost = true;
  });
  internals.connection.on("end", () => {
    if (!ending) lost = true;
  });
  client.once("connect", () => {
    connected = true;
    restart(patience.answerMs);
  });
  client.once("end", () => {
    ended = true;
    restart(undefined);
  });
  (client as Watched)[SET_EXTRA_MS] = (extraMs) => {
    if (connected && patience.answerMs !== undefined) restart(patience.answerMs + extraMs);
  };

  /** pg's error for a query that failed with the connection, said to be that. */
  const named = (err: unknown) =>
    lost && !(err instanceof DependencyTimeoutError) && !(err instanceof pg.DatabaseError)
      ? new DependencyLostError("PostgreSQL", "the connection to PostgreSQL was lost", {
          cause: err,
        })
      : err;

  let ending = false;
  const connect = client.connect.bind(client) as (...args: unknown[]) => unknown;
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const end = client.end.bind(client) as (...args: unknown[]) => unknown;
  Object.assign(client, {
    connect: (...args: unknown[]) => {
      expect();
      return connect(...args);
    },
    query: (...args: unknown[]) => {
      expect();
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === "function") {
        args[last] = (err: unknown, ...rest: unknown[]) => callback(err && named(err), ...rest);
        return query(...args);
      }
      const result = query(...args);
      // A promise for the result; a submittable (a COPY stream) reports on itself instead.
      return result instanceof Promise
        ? result.catch((err: unknown) => Promise.reject(named(err)))
        : result;
    },
    end: (...args: unknown[]) => {
      ending = true;
      return end(...args);
    },
  });
}

/** pg's Client, watched as described above; for a pool's `Client` option. */
export function watchedClient(url: string, patience: Patience): typeof pg.Client {
  return class WatchedClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      watch(this, url, patience);
    }
  };
}

/**
 * Lets PostgreSQL take `extraMs` longer to answer on this pooled connection, until the pool
 * hands it out again: for statements that may run up to a statement_timeout of that length,
 * which then fails them with an error of PostgreSQL's own.
 */
export function allowLongerAnswers(client: pg.PoolClient, extraMs: number): void {
  (client as Watched)[SET_EXTRA_MS]?.(extraMs);
}

/**
 * A pool of watched connections. Waiting for a free connection is bounded too, by
 * `patience.answerMs`: with every connection stuck on a silent server, requests would
 * otherwise queue behind them one after another.
 */
export function createWatchedPool(
  config: pg.PoolConfig & { connectionString: string },
  patience: Patience,
): pg.Pool {
  const pool = new pg.Pool({
    ...config,
    // PostgreSQL cancels a statement the client has stopped waiting for, rather than
    // running it on behind a dropped connection (a lock wait would hold its locks too).
    // A transaction may set its own with `set local statement_timeout`.
    ...(patience.answerMs !== undefined && { statement_timeout: patience.answerMs }),
    Client: watchedClient(config.connectionString, patience),
  });
  // Each checkout starts with the usual patience, whatever the last user allowed.
  pool.on("acquire", (client) => allowLongerAnswers(client, 0));
  const waitMs = patience.answerMs;
  if (waitMs !== undefined) {
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
    Object.assign(pool, {
      connect: (...args: unknown[]) =>
        args.length > 0
          ? connect(...args)
          : withinDeadline(
              connect() as Promise<pg.PoolClient>,
              waitMs,
              () =>
                new DependencyTimeoutError(
                  "PostgreSQL",
                  `no connection to PostgreSQL came free within ${waitMs} ms`,
                ),
              (late) => late.release(),
            ),
    });
  }
  return pool;
}
