// The targets HTTP API: a tenant's named typed tables, and how a file's rows land in them.
import type { IncomingMessage } from "node:http";
import Router from "@koa/router";
import type { Db } from "../../core/db/database.ts";
import {
  deleteTarget,
  findTarget,
  listTargets,
  saveTarget,
  type TargetRecord,
} from "../../core/db/targets.repository.ts";
import {
  isTargetName,
  parseTargetDefinition,
  tenantSchema,
} from "../../core/targets/target-definition.ts";
import { AppError } from "./app-error.ts";
import { type Authenticate, requireTenant, type TenantState } from "./auth.ts";

export type TargetsRoutesDeps = Readonly<{ db: Db; authenticate: Authenticate }>;

/** A definition is a few kilobytes; this leaves room for a table of many columns. */
export const MAX_TARGET_BYTES = 256 * 1024;
/** A definition that does not arrive in this long is not coming. */
const BODY_IDLE_MS = 10_000;

export function presentTarget(target: TargetRecord) {
  return {
    name: target.name,
    schema: target.schema,
    table: target.table,
    mode: target.mode,
    key: target.key,
    columns: target.columns,
    ignore: target.ignore,
    ignoreOthers: target.ignoreOthers,
    version: target.version,
    createdAt: target.createdAt.toISOString(),
    updatedAt: target.updatedAt.toISOString(),
    links: { self: `/targets/${target.name}` },
  };
}

/** The JSON body of a request, at most `max` bytes, each part arriving within BODY_IDLE_MS. */
async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    throw new AppError("UnsupportedMediaType", "send the target as application/json");
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > max) {
    throw new AppError("TooLarge", `a target is at most ${max} bytes`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  req.setTimeout(BODY_IDLE_MS);
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > max) throw new AppError("TooLarge", `a target is at most ${max} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError("InvalidBody", "the request body could not be read to its end", {
      cause: err,
    });
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new AppError("InvalidTarget", "the body is not JSON", {
      details: { problems: ["the body is not JSON"] },
    });
  }
}

function targetName(value: string | undefined): string {
  if (value === undefined || !isTargetName(value)) {
    throw new AppError(
      "InvalidParameter",
      "a target's name is 1 to 63 lower-case letters, digits, _ and -, starting with a letter or digit",
      { details: { parameter: "name" } },
    );
  }
  return value;
}

/** PostgreSQL refused to make or read the table: the tenant can act on that, Sluice cannot. */
function refused(err: unknown): AppError | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !/^(42|22|23|54)/.test(code)) return undefined;
  const message = `PostgreSQL refused the table: ${(err as Error).message}`;
  return new AppError("InvalidTarget", message, { details: { problems: [message] } });
}

export function targetsRouter(deps: TargetsRoutesDeps): Router<TenantState> {
  const router = new Router<TenantState>();
  router.use(requireTenant(deps.authenticate));

  router.get("/targets", async (ctx) => {
    const { tenant } = ctx.state;
    ctx.body = { items: (await listTargets(deps.db, tenant)).map(presentTarget) };
  });

  router.get("/targets/:name", async (ctx) => {
    const { tenant } = ctx.state;
    const name = targetName(ctx.params.name);
    const target = await findTarget(deps.db, tenant, name);
    if (!target) throw new AppError("NotFound", `no target ${name}`);
    ctx.body = presentTarget(target);
  });

  router.put("/targets/:name", async (ctx) => {
    const { tenant } = ctx.state;
    const name = targetName(ctx.params.name);
    const schema = tenantSchema(tenant);
    const parsed = parseTargetDefinition(await readJson(ctx.req, MAX_TARGET_BYTES), schema);
    if ("problems" in parsed) {
      throw new AppError("InvalidTarget", `the target is not valid: ${parsed.problems[0]}`, {
        details: { problems: parsed.problems },
      });
    }
    let outcome: Awaited<ReturnType<typeof saveTarget>>;
    try {
      outcome = await saveTarget(deps.db, tenant, name, schema, parsed.definition);
    } catch (err) {
      throw refused(err) ?? err;
    }
    if (outcome.kind === "invalid") {
      throw new AppError("InvalidTarget", `the target is not valid: ${outcome.problems[0]}`, {
        details: { problems: outcome.problems },
      });
    }
    ctx.status = outcome.created ? 201 : 200;
    if (outcome.created) ctx.set("Location", `/targets/${name}`);
    ctx.body = { ...presentTarget(outcome.target), tableCreated: outcome.tableCreated };
  });

  router.delete("/targets/:name", async (ctx) => {
    const { tenant } = ctx.state;
    const name = targetName(ctx.params.name);
    if (!(await deleteTarget(deps.db, tenant, name))) {
      throw new AppError("NotFound", `no target ${name}`);
    }
    ctx.status = 204;
  });

  return router;
}
