// API keys: each key belongs to a tenant, and every upload to the tenant that sent it.
import { createHash, timingSafeEqual } from "node:crypto";
import type { RouterMiddleware } from "@koa/router";
import { AppError } from "./app-error.ts";

/** The tenant of uploads when authentication is off. */
export const OPEN_TENANT = "default";

export type Authenticate = (authorization: string | undefined) => string;

/** What a route knows of its caller once its router let the request in. */
export type TenantState = { tenant: string };

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Keys are compared as digests of equal length in constant time, against every known key,
 * so neither the length nor the position of a match shows in the timing.
 */
export function createAuthenticator(keys: ReadonlyMap<string, string> | undefined): Authenticate {
  if (!keys) return () => OPEN_TENANT;
  const known = [...keys].map(([key, tenant]) => ({ digest: digest(key), tenant }));
  return (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match?.[1]) {
      throw new AppError("Unauthorized", "send an API key as Authorization: Bearer <key>");
    }
    const offered = digest(match[1]);
    let tenant: string | undefined;
    for (const candidate of known) {
      if (timingSafeEqual(candidate.digest, offered)) tenant = candidate.tenant;
    }
    // RFC 6750: a token that is not valid is a 401 saying so, not a 403.
    if (tenant === undefined) {
      throw new AppError("Unauthorized", "the API key is not valid", {
        headers: { "www-authenticate": 'Bearer realm="sluice", error="invalid_token"' },
      });
    }
    return tenant;
  };
}

/**
 * A router's one check of the caller, run before any of its routes (and only when one of
 * them matches the path and method, so an unknown route is still a 404 or 405): the tenant
 * of the request's API key in `ctx.state.tenant`, or 401.
 */
export function requireTenant(authenticate: Authenticate): RouterMiddleware<TenantState> {
  return (ctx, next) => {
    ctx.state.tenant = authenticate(ctx.get("authorization") || undefined);
    return next();
  };
}
