// Crash points for the fault suite: moments that timing alone cannot hit reliably, such as
// "after the S3 write, before the database commit". Off unless SLUICE_FAULT is set, and
// refused outright in production.
import { once } from "node:events";
import type { ClientRequest } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";

export type FaultPoint =
  | "mid-s3-put"
  | "after-s3-put"
  | "before-view"
  | "after-commit"
  | "commit-answer-lost"
  | "after-publish"
  | "parsing-thread";

const POINTS: readonly FaultPoint[] = [
  "mid-s3-put",
  "after-s3-put",
  "before-view",
  "after-commit",
  "commit-answer-lost",
  "after-publish",
  "parsing-thread",
];

export type Faults = Readonly<{
  /** Kills this process, as SIGKILL would, when `point` is reached for the chosen time. */
  hit(point: FaultPoint): void;
  /** True when `point` is reached for the chosen time: for a fault its caller enacts itself. */
  reached(point: FaultPoint): boolean;
  /**
   * The body of an S3 PUT. At `mid-s3-put`'s chosen time, a stream that gives its first half
   * and kills this process when asked for the rest, so the process dies while the PUT's
   * body is being sent.
   */
  s3Body(body: Uint8Array): Uint8Array | Readable;
}>;

export const NO_FAULTS: Faults = Object.freeze({
  hit() {},
  reached: () => false,
  s3Body: (body: Uint8Array) => body,
});

const die = () => process.kill(process.pid, "SIGKILL");

/** Resolves once what `request` was given has left this process for the kernel. */
async function handedOver(request: ClientRequest): Promise<void> {
  const socket = request.socket ?? ((await once(request, "socket"))[0] as Socket);
  if (socket.connecting) await once(socket, "connect");
  // On connect the request writes out what it holds; what the kernel has not taken yet is
  // still counted in its writable length.
  while (request.writableLength > 0) await new Promise((resolve) => setImmediate(resolve));
}

/** Gives the first half of a body, then kills this process once that half has been sent. */
class HalfThenDie extends Readable {
  private readonly body: Uint8Array;
  private request: ClientRequest | undefined;
  private sent = false;

  constructor(body: Uint8Array) {
    super();
    this.body = body;
  }

  // The HTTP client pipes the body into its request: that is the request to watch.
  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    this.request = destination as unknown as ClientRequest;
    return super.pipe(destination, options);
  }

  override _read(): void {
    if (this.sent) {
      if (this.request) void handedOver(this.request).then(die);
      else die();
      return;
    }
    this.sent = true;
    this.push(this.body.subarray(0, Math.floor(this.body.byteLength / 2)));
  }
}

/** Parses `<point>:<n>`: die the n-th time the point is reached. */
export function parseFaults(spec: string | undefined, env: string): Faults {
  if (!spec) return NO_FAULTS;
  if (env === "production") throw new Error("SLUICE_FAULT must not be set in production");
  const [point, nth] = spec.split(":");
  const times = Number(nth);
  if (!POINTS.includes(point as FaultPoint) || !Number.isInteger(times) || times < 1) {
    throw new Error(`SLUICE_FAULT must be <point>:<n> with point one of ${POINTS.join(", ")}`);
  }
  let seen = 0;
  const reached = (at: FaultPoint) => at === point && ++seen === times;
  return {
    hit(at) {
      if (reached(at)) die();
    },
    reached,
    s3Body: (body) => (reached("mid-s3-put") ? new HalfThenDie(body) : body),
  };
}
