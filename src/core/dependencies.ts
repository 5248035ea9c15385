// The services Sluice depends on, and how it stops waiting for one that keeps its connection
// open but says nothing: without a bound, such a service holds every caller for ever.
import { createConnection } from "node:net";

export type Dependency = "PostgreSQL" | "Redis" | "RabbitMQ" | "S3";

/** Whether something accepts TCP connections on host:port at the moment of asking. */
export function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Connection URLs without their passwords, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** An operation on a dependency that failed for want of the dependency, naming which. */
abstract class DependencyFailure extends Error {
  readonly dependency: Dependency;

  constructor(dependency: Dependency, message: string, options?: ErrorOptions) {
    super(message, options);
    this.dependency = dependency;
  }
}

/** A dependency that did not answer in time; the message says where and after how long. */
export class DependencyTimeoutError extends DependencyFailure {
  override name = "DependencyTimeoutError";
  /** Node's code for a timed-out connection, which is what this amounts to. */
  readonly code = "ETIMEDOUT";

  /** "PostgreSQL at postgres://…/sluice did not answer within 5000 ms" */
  static silent(
    dependency: Dependency,
    url: string,
    ms: number,
    options?: ErrorOptions,
  ): DependencyTimeoutError {
    return new DependencyTimeoutError(
      dependency,
      `${dependency} at ${redactUrl(url)} did not answer within ${ms} ms`,
      options,
    );
  }
}

/**
 * Settles as `work` does, or rejects with `timeout()` once `ms` have passed. What `work`
 * yields after that goes to `discard`, so that nothing it holds (a pooled connection, a
 * channel) is lost.
 */
export function withinDeadline<T>(
  work: Promise<T>,
  ms: number,
  timeout: () => Error,
  discard?: (late: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(timeout());
    }, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        if (expired) discard?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * A dependency's connection that was lost, or was not there, under an operation: the client's
 * own error, which often says so only in its message, is the cause.
 */
export class DependencyLostError extends DependencyFailure {
  override name = "DependencyLostError";
  /** Node's code for a connection reset, which is what this amounts to. */
  readonly code = "ECONNRESET";
}

export type Check = Readonly<{ dependency: Dependency; answers: () => Promise<unknown> }>;

/** The dependencies whose check failed or took longer than `ms`, all checked at once. */
export async function unanswered(checks: readonly Check[], ms: number): Promise<Dependency[]> {
  const results = await Promise.allSettled(
    checks.map((check) =>
      withinDeadline(
        check.answers(),
        ms,
        () =>
          new DependencyTimeoutError(
            check.dependency,
            `${check.dependency} did not answer within ${ms} ms`,
          ),
      ),
    ),
  );
  return checks
    .filter((_, i) => results[i]?.status === "rejected")
    .map((check) => check.dependency);
}
