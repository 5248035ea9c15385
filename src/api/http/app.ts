// The api's Koa application: security headers, errors as JSON, health, metrics, then the
// routers the api gives it (api.ts makes them: uploads, targets, the web page).
import type Router from "@koa/router";
import Koa from "koa";
import type { Dependency } from "../../core/dependencies.ts";
import type { Logger } from "../../core/logger.ts";
import type { ApiMetrics } from "../../core/metrics.ts";
import { answerOps, OPS_PATHS, type Ops } from "../../core/program/ops-answers.ts";
import { AppError } from "./app-error.ts";
import { answerOf } from "./error-answers.ts";
import type { Lingering } from "./lingering-close.ts";
import openapi from "./openapi.json" with { type: "json" };
import { unavailableAnswer } from "./unavailable.ts";

export type AppDeps = Readonly<{
  metrics: ApiMetrics;
  /** The dependencies that do not answer; none when the api is ready. */
  unanswered: () => Promise<readonly string[]>;
  /** True once the api is stopping: it is no longer ready. */
  stopping: () => boolean;
  log: Logger;
  /** Connections answered before their body arrived, discarding the rest before they close. */
  lingering: Lingering;
  /** Served in this order, after the ops paths and /openapi.json. */
  routers: readonly Router[];
}>;

const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

/** The paths answered without a route of the uploads router, and without a key. */
export const OPEN_PATHS: ReadonlySet<string> = new Set([...OPS_PATHS, "/openapi.json"]);

/** What `unanswered` may name that every replica shares; anything else is the process's own. */
const SERVICES: ReadonlySet<string> = new Set<Dependency>([
  "PostgreSQL",
  "Redis",
  "RabbitMQ",
  "S3",
]);

/** The route pattern, never the path itself: a path holds an upload id. */
function routeOf(ctx: Koa.Context): string {
  const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === "string") return matched;
  return OPEN_PATHS.has(ctx.path) ? ctx.path : "unmatched";
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = true;
  // Errors are answered by the middleware below; Koa's own printing would duplicate them.
  app.silent = true;
  // What reaches Koa itself failed after the answer began (a body stream that broke).
  app.on("error", (err: Error) => deps.log.warn({ err: err.message }, "response cut off"));

  /** The answer ends the connection; what the client still sends of its body is discarded first. */
  const closeAfterAnswer = (ctx: Koa.Context) => {
    ctx.set("Connection", "close");
    deps.lingering.after(ctx.req);
  };

  // Outermost, so that it sees the status the error handler settles on.
  app.use(async (ctx, next) => {
    const done = deps.metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const route = routeOf(ctx);
      done({ method: ctx.method, route });
      deps.metrics.httpRequests.inc({ method: ctx.method, route, code: String(ctx.status) });
    }
  });

  app.use(async (ctx, next) => {
    ctx.set(SECURITY_HEADERS);
    // Only an upload and a target's definition read their bodies, bounded by idleness and
    // size. Node drains any other request's body after the answer, for as long as the client
    // sends it, since no request timeout bounds bodies: the connection is closed after the
    // answer instead, once the client stops sending or within the lingering's bounds.
    const { headers } = ctx.req;
    const hasBody =
      headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
    const readsBody =
      (ctx.method === "POST" && ctx.path === "/uploads") ||
      (ctx.method === "PUT" && ctx.path.startsWith("/targets/"));
    if (hasBody && !readsBody) closeAfterAnswer(ctx);
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError("NotFound", `no route for ${ctx.method} ${ctx.path}`);
      }
      if (ctx.status === 405 || ctx.status === 501) {
        throw new AppError("MethodNotAllowed", `${ctx.method} is not allowed on ${ctx.path}`);
      }
    } catch (err) {
      const appError =
        err instanceof AppError
          ? err
          : (unavailableAnswer(err) ??
            new AppError("Internal", "internal error; the server log has the details"));
      const { status, headers } = answerOf(appError);
      if (!(err instanceof AppError) || (status >= 500 && appError.cause !== undefined)) {
        deps.log.error({ err, method: ctx.method, path: ctx.path }, "request failed");
      } else if (status >= 500) {
        // A refusal Sluice chose (Busy): expected under load, no fault to trace.
        deps.log.warn(
          { code: appError.code, status, method: ctx.method, route: routeOf(ctx) },
          "request refused",
        );
      }
      ctx.status = status;
      ctx.set(headers);
      // The body may not have been read to its end; the connection cannot be reused.
      if (!ctx.req.readableEnded) closeAfterAnswer(ctx);
      ctx.body = appError.toJSON();
    }
  });

  const ops: Ops = {
    registry: deps.metrics.registry,
    readiness: async (verbose) => {
      if (deps.stopping()) return { status: "stopping" };
      // The probe (no `verbose`) leaves the services out: they are the same for every
      // replica, so a blip would take all of them out of the Service at once and clients
      // would get no answer, where each request now gets 503 with Retry-After.
      const unavailable = (await deps.unanswered()).filter(
        (name) => verbose || !SERVICES.has(name),
      );
      return unavailable.length === 0 ? { status: "ready" } : { status: "not ready", unavailable };
    },
  };
  app.use(async (ctx, next) => {
    const answer = await answerOps(ctx.method, ctx.path, ctx.query.verbose !== undefined, ops);
    if (answer === undefined) {
      if (ctx.path !== "/openapi.json") return next();
      if (ctx.method !== "GET" && ctx.method !== "HEAD") {
        throw new AppError("MethodNotAllowed", `${ctx.method} is not allowed on ${ctx.path}`, {
          headers: { allow: "HEAD, GET" },
        });
      }
      ctx.body = openapi;
      return;
    }
    if (answer.status === 405) {
      throw new AppError("MethodNotAllowed", `${ctx.method} is not allowed on ${ctx.path}`, {
        headers: answer.headers,
      });
    }
    ctx.status = answer.status;
    ctx.type = answer.type ?? "application/json";
    ctx.body = answer.body;
  });

  for (const router of deps.routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
