// Bounds the upload bodies one api process receives at once. Past the bound a new upload is
// answered at once, before its body is read, instead of queuing for the disk, the database
// pool and memory until every upload is slow. A body that stops arriving is cut off, so
// clients that stall cannot hold every place.
import type { Middleware } from "koa";
import { AppError } from "./app-error.ts";

/** Seconds a refused client is asked to wait: bodies take a while to arrive. */
const RETRY_AFTER_SECONDS = 5;

export function limitConcurrentUploads(max: number, idleTimeoutMs: number): Middleware {
  let receiving = 0;
  return async (ctx, next) => {
    if (receiving >= max) {
      throw new AppError("Busy", 503, "the server is receiving as many uploads as it can; retry", {
        headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
      });
    }
    receiving++;
    // The socket's idle timer: the body read fails, the upload is rejected, the place freed.
    ctx.req.setTimeout(idleTimeoutMs, () => ctx.req.destroy());
    try {
      await next();
    } finally {
      receiving--;
      // The socket is gone when the body was cut short.
      ctx.req.socket?.setTimeout(0);
    }
  };
}
