// Tells a failure to reach PostgreSQL, Redis, RabbitMQ or S3 from a fault of the api itself:
// the first is answered 503 with Retry-After, because the same request may well succeed a
// moment later; the second stays a 500. The answer names the service when the error says
// which it was, and never its address or credentials (the log has those).
import amqp from "amqplib";
// ioredis's index does not export it; its errors module does, with types.
import { MaxRetriesPerRequestError } from "ioredis/built/errors/index.js";
import pg from "pg";
import {
  type Dependency,
  DependencyLostError,
  DependencyTimeoutError,
} from "../../core/dependencies.ts";
import { AppError } from "./app-error.ts";

// admin_shutdown, crash_shutdown, cannot_connect_now (starting up or in recovery), and
// too_many_connections; the whole of class 08 is connection exceptions.
const POSTGRES_CODES = new Set(["57P01", "57P02", "57P03", "53300"]);
const POSTGRES_CONNECTION_CLASS = /^08[0-9A-Z]{3}$/;
const STATEMENT_TIMEOUT = "57014";
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
type ErrorLike = { code?: unknown; name?: unknown; cause?: unknown };

/** The AWS SDK puts `$metadata` on every error a command fails with, the network's included. */
type AwsErrorLike = ErrorLike & { $metadata: object; $fault?: unknown };
const isAwsError = (err: object): err is AwsErrorLike =>
  typeof (err as { $metadata?: unknown }).$metadata === "object";

function classifyS3(err: AwsErrorLike): Unavailable | undefined {
  const { code, name, $fault } = err;
  if (typeof code === "string" && NETWORK_CODES.has(code)) {
    return { dependency: "S3", silent: code === "ETIMEDOUT" };
  }
  // The SDK's HTTP handler's name for a connection not made, or a socket silent, in time.
  if (name === "TimeoutError") return { dependency: "S3", silent: true };
  // S3's own 5xx (InternalError, SlowDown): the service, not the request, failed.
  if ($fault === "server") return { dependency: "S3", silent: false };
  return undefined;
}

/** A dependency failure, and which service it was when the error says so. */
export type Unavailable = Readonly<{ dependency: Dependency | undefined; silent: boolean }>;

function classify(err: object): Unavailable | undefined {
  if (err instanceof DependencyTimeoutError) return { dependency: err.dependency, silent: true };
  // pg's, ioredis's and amqplib's errors for a lost or missing connection say so in their
  // message alone; Sluice's clients name them from the connection's state
  // (core/db/watched-client.ts, core/status/watched-redis.ts, core/broker/broker.ts).
  if (err instanceof DependencyLostError) return { dependency: err.dependency, silent: false };
  // amqplib: an operation on a channel or connection already closed.
  if (err instanceof amqp.IllegalOperationError) {
    return { dependency: "RabbitMQ", silent: false };
  }
  // ioredis reconnects by itself, and fails a command once its reconnection attempts are
  // spent, or when the connection it was sent on is dropped (one dropped for saying nothing
  // fails its commands with a DependencyTimeoutError instead: core/status/watched-redis.ts).
  if (err instanceof MaxRetriesPerRequestError) return { dependency: "Redis", silent: false };
  if (isAwsError(err)) return classifyS3(err);
  const { code } = err as ErrorLike;
  // query_canceled: Sluice cancels nothing itself, so this is a statement timeout.
  if (code === STATEMENT_TIMEOUT && err instanceof pg.DatabaseError) {
    return { dependency: "PostgreSQL", silent: true };
  }
  if (typeof code === "string") {
    if (POSTGRES_CODES.has(code) || POSTGRES_CONNECTION_CLASS.test(code)) {
      return {
        dependency: err instanceof pg.DatabaseError ? "PostgreSQL" : undefined,
        silent: false,
      };
    }
    if (NETWORK_CODES.has(code)) return { dependency: undefined, silent: code === "ETIMEDOUT" };
  }
  return undefined;
}

/** Says whether `err`, or an error it wraps, is a dependency out of reach, and which. */
export function dependencyFailure(err: unknown): Unavailable | undefined {
  const seen = new Set<unknown>();
  const pending = [err];
  let found: Unavailable | undefined;
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current !== "object" || current === null || seen.has(current)) continue;
    seen.add(current);
    const here = classify(current);
    // The most specific answer wins: an error that names its service over one that does not.
    if (here && (!found || (found.dependency === undefined && here.dependency !== undefined))) {
      found = here;
    }
    if (found?.dependency) return found;
    pending.push((current as ErrorLike).cause);
    // Node reports a refused connection to a name with several addresses as an AggregateError.
    if (current instanceof AggregateError) pending.push(...current.errors);
  }
  return found;
}

/** True when `err`, or an error it wraps, says a dependency could not be reached. */
export function isDependencyUnavailable(err: unknown): boolean {
  return dependencyFailure(err) !== undefined;
}

/** The 503 for a dependency out of reach; undefined for any other error. */
export function unavailableAnswer(err: unknown): AppError | undefined {
  const failure = dependencyFailure(err);
  if (!failure) return undefined;
  const { dependency, silent } = failure;
  const message = !dependency
    ? "a service Sluice needs is unreachable; retry"
    : silent
      ? `${dependency} did not answer in time; retry`
      : `${dependency} is unreachable; retry`;
  return new AppError("ServiceUnavailable", message, {
    details: dependency ? { service: dependency } : undefined,
  });
}
