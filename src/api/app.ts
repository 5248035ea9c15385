// The api's Koa application: security headers, errors as JSON, health, metrics and routes.
import Koa from "koa";
import type { Dependency } from "../core/dependencies.ts";
import type { Logger } from "../core/logger.ts";
import type { ApiMetrics } from "../core/metrics.ts";
import { answerOps, OPS_PATHS, type Ops } from "../core/ops-answers.ts";
import { AppError } from "./app-error.ts";
import openapi from "./openapi.json" with { type: "json" };
import { targetsRouter } from "./targets.routes.ts";
import { unavailableAnswer } from "./unavailable.ts";
import { type UploadsRoutesDeps, uploadsRouter } from "./uploads.routes.ts";
import { webRouter } from "./web.routes.ts";

export type AppDeps = UploadsRoutesDeps &
  Readonly<{
    metrics: ApiMetrics;
    /** The dependencies that do not answer; none when the api is ready. */
    unanswered: () => Promise<readonly string[]>;
    log: Logger;
    /** Where the built web page is (dist/web unless a test built its own). */
    webRoot: string;
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
    // sends it, since no request timeout bounds bodies: the connection is closed with the
    // answer instead.
    const { headers } = ctx.req;
    const hasBody =
      headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
    const readsBody =
      (ctx.method === "POST" && ctx.path === "/uploads") ||
      (ctx.method === "PUT" && ctx.path.startsWith("/targets/"));
    if (hasBody && !readsBody) {
      ctx.set("Connection", "close");
    }
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError("NotFound", 404, `no route for ${ctx.method} ${ctx.path}`);
      }
      if (ctx.status === 405 || ctx.status === 501) {
        throw new AppError("MethodNotAllowed", 405, `${ctx.method} is not allowed on ${ctx.path}`);
      }
    } catch (err) {
      const appError =
        err instanceof AppError
          ? err
          : (unavailableAnswer(err) ??
            new AppError("Internal", 500, "internal error; the server log has the details"));
      if (!(err instanceof AppError) || (appError.status >= 500 && appError.cause !== undefined)) {
        deps.log.error({ err, method: ctx.method, path: ctx.path }, "request failed");
      } else if (appError.status >= 500) {
        // A refusal Sluice chose (Busy): expected under load, no fault to trace.
        deps.log.warn(
          { code: appError.code, status: appError.status, method: ctx.method, route: routeOf(ctx) },
          "request refused",
        );
      }
      ctx.status = appError.status;
      ctx.set(appError.headers);
      // The body may not have been read to its end; the connection cannot be reused.
      if (!ctx.req.readableEnded) ctx.set("Connection", "close");
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
        throw new AppError("MethodNotAllowed", 405, `${ctx.method} is not allowed on ${ctx.path}`, {
          headers: { allow: "HEAD, GET" },
        });
      }
      ctx.body = openapi;
      return;
    }
    if (answer.status === 405) {
      throw new AppError("MethodNotAllowed", 405, `${ctx.method} is not allowed on ${ctx.path}`, {
        headers: answer.headers,
      });
    }
    ctx.status = answer.status;
    ctx.type = answer.type ?? "application/json";
    ctx.body = answer.body;
  });

  const router = uploadsRouter(deps);
  app.use(router.routes());
  app.use(router.allowedMethods());
  const targets = targetsRouter(deps);
  app.use(targets.routes());
  app.use(targets.allowedMethods());
  const web = webRouter(deps.webRoot);
  app.use(web.routes());
  app.use(web.allowedMethods());
  return app;
}
