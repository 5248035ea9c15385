// Tells a failure to reach PostgreSQL, Redis or RabbitMQ from a fault of the api itself:
// the first is answered 503 with Retry-After, because the same request may well succeed a
// moment later; the second stays a 500.

// admin_shutdown, crash_shutdown, cannot_connect_now (starting up or in recovery), and
// too_many_connections; the whole of class 08 is connection exceptions.
const POSTGRES_CODES = new Set(["57P01", "57P02", "57P03", "53300"]);
const POSTGRES_CONNECTION_CLASS = /^08[0-9A-Z]{3}$/;
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
const CONNECTION_MESSAGES = new Set([
  // pg, for a connection dropped while in use
  "Connection terminated unexpectedly",
  // pg, for a query on a client whose connection already failed (a rollback after a reset)
  "Client has encountered a connection error and is not queryable",
  // ioredis, for a command sent while it has no connection
  "Stream isn't writeable and enableOfflineQueue options is false",
]);
const CONNECTION_ERROR_NAMES = new Set([
  // ioredis reconnects by itself, and fails a command once its reconnection attempts are spent.
  "MaxRetriesPerRequestError",
  // amqplib: a channel or connection closed under the operation.
  "IllegalOperationError",
]);

type ErrorLike = { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };

/** True when `err`, or an error it wraps, says a dependency could not be reached. */
export function isDependencyUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const pending = [err];
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current !== "object" || current === null || seen.has(current)) continue;
    seen.add(current);
    const { code, name, message, cause } = current as ErrorLike;
    if (typeof code === "string") {
      if (NETWORK_CODES.has(code) || POSTGRES_CODES.has(code)) return true;
      if (POSTGRES_CONNECTION_CLASS.test(code)) return true;
    }
    if (typeof name === "string" && CONNECTION_ERROR_NAMES.has(name)) return true;
    if (typeof message === "string" && CONNECTION_MESSAGES.has(message)) return true;
    pending.push(cause);
    // Node reports a refused connection to a name with several addresses as an AggregateError.
    if (current instanceof AggregateError) pending.push(...current.errors);
  }
  return false;
}
