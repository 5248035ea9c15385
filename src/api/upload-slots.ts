// Bounds the upload bodies one api process receives at once. Past the bound a new upload is
// answered at once, before its body is read, instead of queuing for the disk, the database
// pool and memory until every upload is slow.
import type { Middleware } from "koa";
import { AppError } from "./app-error.ts";

/** Seconds a refused client is asked to wait: bodies take a while to arrive. */
const RETRY_AFTER_SECONDS = 5;

export function limitConcurrentUploads(max: number): Middleware {
  let receiving = 0;
  return async (_ctx, next) => {
    if (receiving >= max) {
      throw new AppError("Busy", 503, "the server is receiving as many uploads as it can; retry", {
        headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
      });
    }
    receiving++;
    try {
      await next();
    } finally {
      receiving--;
    }
  };
}
