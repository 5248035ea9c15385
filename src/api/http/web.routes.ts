// The web page at `/`: the files `npm run build` writes to dist/web (from web/), served with a
// policy that lets the page load its own script and style and call this api, nothing else.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Router from "@koa/router";
import type Koa from "koa";
import { AppError } from "./app-error.ts";

/** dist/web beside src/ and dist/, so that the sources (npm start) and the image find it alike. */
export const WEB_ROOT = fileURLToPath(new URL("../../../dist/web/", import.meta.url));

/** No inline script or style, no other origin, no framing: only this api's own files. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** The page's routes; they serve files, not the api, so /openapi.json leaves them out. */
export const WEB_ROUTES = { page: "/", asset: "/assets/:name" } as const;

/** The build names every asset after a hash of its content, so a name never changes meaning. */
const ASSET = /^[A-Za-z0-9_-]+\.[A-Za-z0-9]+$/;

async function sendFile(ctx: Koa.Context, path: string, type: string, missing: string) {
  const found = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT" || err.code === "ENOTDIR") return undefined;
    throw err;
  });
  if (!found?.isFile()) throw new AppError("NotFound", missing);
  ctx.status = 200;
  ctx.type = type;
  ctx.etag = `W/"${found.size.toString(16)}-${Math.floor(found.mtimeMs).toString(16)}"`;
  ctx.lastModified = found.mtime;
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  ctx.length = found.size;
  ctx.body = createReadStream(path);
}

export function webRouter(root: string): Router {
  const router = new Router();

  router.get(WEB_ROUTES.page, async (ctx) => {
    await sendFile(
      ctx,
      join(root, "index.html"),
      "text/html; charset=utf-8",
      "the web page is not built: `npm run build` builds it",
    );
    // Always revalidated: it names the current build's assets.
    ctx.set({ "Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache" });
  });

  router.get(WEB_ROUTES.asset, async (ctx) => {
    const name = ctx.params.name as string;
    const type = TYPES[extname(name)];
    if (!ASSET.test(name) || type === undefined) {
      throw new AppError("NotFound", `no asset ${name}`);
    }
    await sendFile(ctx, join(root, "assets", name), type, `no asset ${name}`);
    ctx.set("Cache-Control", "public, max-age=31536000, immutable");
  });

  return router;
}
