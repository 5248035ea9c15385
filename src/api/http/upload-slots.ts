// Bounds the upload bodies one api process receives at once, in all and per tenant, and a
// tenant's across every replica, from the first byte. Past the bound a new upload is answered at once, before its body is read,
// instead of queuing for the disk, the database pool and memory until every upload is slow.
// A body that stops arriving is cut off, so clients that stall cannot hold every place.
import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError } from "./app-error.ts";
import { createPlaces } from "./places.ts";
import type { TenantHolds } from "./tenant-holds.ts";

/**
 * Seconds a tenant refused for its bodies arriving across the replicas waits: bodies take a
 * while to arrive, uploads in progress (the code's usual wait) longer.
 */
const BODIES_RETRY_AFTER_SECONDS = 5;

export type UploadSlots = Readonly<{
  /** Runs `receive` holding one of the process's places for `tenant`, or refuses at once. */
  hold<T>(
    http: { req: IncomingMessage; res: ServerResponse },
    tenant: string,
    receive: () => Promise<T>,
  ): Promise<T>;
}>;

export type UploadSlotsOptions = Readonly<{
  max: number;
  perTenant: number;
  /** The bodies each tenant sends across every api replica, bounded by its limit. */
  holds: TenantHolds;
  /** MAX_ACTIVE_UPLOADS_PER_TENANT, what `holds` bounds a tenant's bodies to. */
  activeLimit: number;
  idleTimeoutMs: number;
  /** Told the number of bodies being received whenever it changes. */
  onChange?: (receiving: number) => void;
}>;

export function createUploadSlots(options: UploadSlotsOptions): UploadSlots {
  const places = createPlaces(options.max, options.perTenant, options.onChange);
  return {
    async hold({ req, res }, tenant, receive) {
      const release = places.take(tenant);
      if (release === "full") {
        throw new AppError("Busy", "the server is receiving as many uploads as it can; retry");
      }
      if (release === "tenant-full") {
        throw new AppError(
          "TooManyConcurrentUploads",
          `this server is receiving ${options.perTenant} uploads of yours at once; retry when one has arrived`,
          {
            details: { limit: options.perTenant },
          },
        );
      }
      // Across replicas too, from the first byte: a tenant's bodies still before their upload
      // is recorded (a form before its file part) would otherwise not count anywhere else.
      let shared: (() => Promise<void>) | undefined;
      try {
        shared = await options.holds.take(tenant);
      } catch (err) {
        release();
        throw err;
      }
      if (!shared) {
        release();
        throw new AppError(
          "TooManyActiveUploads",
          `${options.activeLimit} uploads of yours are arriving at once across the api's replicas; retry when one has arrived`,
          {
            details: { limit: options.activeLimit },
            retryAfterSeconds: BODIES_RETRY_AFTER_SECONDS,
          },
        );
      }
      // The socket's idle timer: the body read fails, the upload is rejected, the place freed.
      // Once the whole body has arrived the client is waiting for the answer, not stalling.
      // On the response, not the request: Node tells a request's listeners only while it is
      // incomplete, and destroys a socket whose timeout nobody heard, answer unwritten.
      res.setTimeout(options.idleTimeoutMs, () => {
        if (req.complete) return;
        req.destroy(
          new AppError(
            "IdleTimeout",
            `the body sent nothing for ${options.idleTimeoutMs} ms and was cut off`,
          ),
        );
      });
      try {
        return await receive();
      } finally {
        release();
        await shared();
        // The socket is gone when the body was cut short.
        req.socket?.setTimeout(0);
      }
    },
  };
}
