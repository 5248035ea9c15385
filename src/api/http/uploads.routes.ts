// The uploads HTTP API.
import { Readable } from "node:stream";
import Router from "@koa/router";
import type { RedriveResult } from "../../core/broker/dead-letters.ts";
import type { Db } from "../../core/db/database.ts";
import { requestPurge } from "../../core/db/purge.repository.ts";
import { findTarget, snapshotOf } from "../../core/db/targets.repository.ts";
import { listUploads, markCancelled, rowErrorsAfter } from "../../core/db/uploads.repository.ts";
import type { ApiMetrics } from "../../core/metrics.ts";
import type { StatusStore } from "../../core/status/status-store.ts";
import { isTargetName, type TargetSnapshot } from "../../core/targets/target-definition.ts";
import { isUploadId } from "../../core/uploads/upload-id.ts";
import { toUploadView, type UploadView } from "../../core/uploads/upload-view.ts";
import type { CsvReaderOptions } from "../intake/csv/csv-reader.ts";
import type { UploadsService } from "../intake/uploads-service.ts";
import { isFinal } from "../progress/progress-event.ts";
import type { ProgressHub } from "../progress/progress-hub.ts";
import { openProgressStream } from "../progress/progress-stream.ts";
import type { BatchPublisher } from "../publishing/batch-publisher.ts";
import { AppError } from "./app-error.ts";
import { type Authenticate, requireTenant, type TenantState } from "./auth.ts";
import { createPlaces } from "./places.ts";
import { type BodyLimits, checkBodyHeaders, openUploadBody } from "./upload-body.ts";
import type { UploadSlots } from "./upload-slots.ts";

export type UploadsRoutesDeps = Readonly<{
  db: Db;
  status: StatusStore;
  uploads: UploadsService;
  publisher: BatchPublisher;
  authenticate: Authenticate;
  progress: ProgressHub;
  metrics: Pick<ApiMetrics, "uploadsFinished" | "progressStreams">;
  /** Refuses a new upload, before its body is read, while the api receives too many. */
  uploadSlots: UploadSlots;
  bodyLimits: BodyLimits;
  /** Progress streams this process keeps open, in all and per tenant. */
  progressLimits: Readonly<{ max: number; perTenant: number }>;
  /** Moves an upload's dead-lettered batches back to the work queue, reopening it. */
  redrive: (uploadId: string) => Promise<RedriveResult>;
  /** Deletes the data of an upload whose purge is recorded (core/uploads/purge.ts). */
  purge: (uploadId: string) => Promise<void>;
  /** True once the api is stopping: it takes no new upload. */
  stopping: () => boolean;
}>;

/** Often enough that proxies with a one-minute idle timeout keep the stream open. */
const HEARTBEAT_MS = 15_000;
/**
 * Seconds a client refused a progress stream for want of room waits before reconnecting: a
 * stream stays open for as long as its upload runs.
 */
const STREAM_RETRY_AFTER_SECONDS = 30;

const ENCODINGS = new Set(["utf-8", "utf8", "latin1", "iso-8859-1", "windows-1252", "cp1252"]);
const DELIMITERS: Record<string, NonNullable<CsvReaderOptions["delimiter"]>> = {
  ",": ",",
  comma: ",",
  ";": ";",
  semicolon: ";",
  "\t": "\t",
  tab: "\t",
  "|": "|",
  pipe: "|",
};

function links(id: string) {
  return {
    self: `/uploads/${id}`,
    events: `/uploads/${id}/events`,
    errors: `/uploads/${id}/errors`,
  };
}

export function present(view: UploadView) {
  const { tenant: _tenant, ...visible } = view;
  return { ...visible, links: links(view.id) };
}

function queryValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseEncoding(value: string | undefined): CsvReaderOptions["encoding"] {
  if (value === undefined) return undefined;
  const name = value.toLowerCase();
  if (!ENCODINGS.has(name)) {
    throw new AppError("InvalidParameter", "encoding must be one of utf-8, latin1, windows-1252", {
      details: { parameter: "encoding" },
    });
  }
  if (name === "utf8" || name === "utf-8") return "utf-8";
  return name === "windows-1252" || name === "cp1252" ? "windows-1252" : "latin1";
}

function parseDelimiter(value: string | undefined): CsvReaderOptions["delimiter"] {
  if (value === undefined) return undefined;
  const delimiter = DELIMITERS[value.toLowerCase()];
  if (!delimiter) {
    throw new AppError("InvalidParameter", "delimiter must be one of , ; tab |", {
      details: { parameter: "delimiter" },
    });
  }
  return delimiter;
}

/** Printable ASCII without spaces at either end, as the Idempotency-Key draft's keys are. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$/;

function parseIdempotencyKey(value: string): string | undefined {
  if (value === "") return undefined;
  if (!IDEMPOTENCY_KEY.test(value)) {
    throw new AppError(
      "InvalidParameter",
      "Idempotency-Key must be 1 to 255 printable ASCII characters",
      { details: { parameter: "Idempotency-Key" } },
    );
  }
  return value;
}

/** The tenant's target named by `?target=`, as it is now; another tenant's is as unknown. */
async function uploadTarget(
  db: Db,
  tenant: string,
  name: string | undefined,
): Promise<TargetSnapshot | undefined> {
  if (name === undefined) return undefined;
  if (!isTargetName(name)) {
    throw new AppError("InvalidParameter", "target must be the name of a target", {
      details: { parameter: "target" },
    });
  }
  const target = await findTarget(db, tenant, name);
  if (!target) {
    throw new AppError("UnknownTarget", `no target ${name}; define it with PUT /targets/${name}`, {
      details: { parameter: "target" },
    });
  }
  return snapshotOf(target);
}

export function uploadsRouter(deps: UploadsRoutesDeps): Router<TenantState> {
  const router = new Router<TenantState>();
  router.use(requireTenant(deps.authenticate));
  const streams = createPlaces(deps.progressLimits.max, deps.progressLimits.perTenant);

  /** The upload if the caller's tenant owns it; another tenant's upload is as unknown as a missing one. */
  async function owned(id: string, tenant: string): Promise<UploadView> {
    // A UUID in capitals is the same UUID; anything else is no upload, and is not echoed.
    const key = id.toLowerCase();
    if (!isUploadId(key))
      throw new AppError("NotFound", "no upload has that id; upload ids are UUIDs");
    const view = await deps.status.get(key);
    if (!view || view.tenant !== tenant) throw new AppError("NotFound", `no upload ${key}`);
    return view;
  }

  router.post("/uploads", async (ctx) => {
    const { tenant } = ctx.state;
    if (deps.stopping()) {
      throw new AppError("ShuttingDown", "this api is stopping; send the upload again");
    }
    const encoding = parseEncoding(queryValue(ctx.query.encoding));
    const delimiter = parseDelimiter(queryValue(ctx.query.delimiter));
    checkBodyHeaders(ctx.req, deps.bodyLimits);
    const idempotencyKey = parseIdempotencyKey(ctx.get("idempotency-key"));
    const target = await uploadTarget(deps.db, tenant, queryValue(ctx.query.target));
    const { view, replayed } = await deps.uploadSlots.hold(ctx, tenant, async () => {
      const body = await openUploadBody(ctx.req, deps.bodyLimits);
      try {
        return await deps.uploads.accept({
          tenant,
          filename: body.filename,
          body: body.stream,
          encoding,
          delimiter,
          idempotencyKey,
          target,
        });
      } finally {
        body.close();
      }
    });
    ctx.status = 202;
    ctx.set("Location", `/uploads/${view.id}`);
    if (replayed) ctx.set("Idempotent-Replayed", "true");
    ctx.body = present(view);
  });

  router.get("/uploads", async (ctx) => {
    const { tenant } = ctx.state;
    const written = queryValue(ctx.query.limit) ?? "20";
    // Digits only: Number() would also read 0x10, 1e2 and " 5".
    const limit = /^[0-9]{1,3}$/.test(written) ? Number(written) : Number.NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new AppError("InvalidParameter", "limit must be an integer from 1 to 100", {
        details: { parameter: "limit" },
      });
    }
    const after = queryValue(ctx.query.after)?.toLowerCase();
    if (after !== undefined && !isUploadId(after)) {
      throw new AppError("InvalidParameter", "after must be an upload id", {
        details: { parameter: "after" },
      });
    }
    const page = await listUploads(deps.db, tenant, limit, after);
    ctx.body = {
      items: page.items.map((record) => present(toUploadView(record))),
      next: page.next ? `/uploads?limit=${limit}&after=${page.next}` : null,
    };
  });

  router.get("/uploads/:id", async (ctx) => {
    const { tenant } = ctx.state;
    ctx.body = present(await owned(ctx.params.id as string, tenant));
  });

  router.delete("/uploads/:id", async (ctx) => {
    const { tenant } = ctx.state;
    const view = await owned(ctx.params.id as string, tenant);
    const cancelled = await markCancelled(deps.db, view.id);
    if (cancelled) {
      deps.uploads.cancelIntake(view.id);
      deps.publisher.cancel(view.id);
      deps.metrics.uploadsFinished.inc({ status: "cancelled" });
    }
    // Read from PostgreSQL, not from the view a cached status gave: a cancel sent again after
    // one whose answer failed once it was recorded (Redis not answering) answers as that one
    // would have, and puts the view right.
    const now = (await deps.status.refresh(view.id)) as UploadView;
    if (!cancelled && now.status !== "cancelled") {
      throw new AppError("Conflict", `upload ${view.id} is ${now.status} and cannot be cancelled`);
    }
    ctx.body = present(now);
  });

  router.delete("/uploads/:id/data", async (ctx) => {
    const { tenant } = ctx.state;
    const view = await owned(ctx.params.id as string, tenant);
    const request = await requestPurge(deps.db, view.id);
    if (request.kind === "unknown") throw new AppError("NotFound", `no upload ${view.id}`);
    if (request.kind === "in-progress") {
      throw new AppError(
        "Conflict",
        `upload ${view.id} is ${request.status}; cancel it first (DELETE /uploads/${view.id})`,
      );
    }
    // Recorded first: a purge cut short here finishes on the next request or controller pass.
    await deps.purge(view.id);
    ctx.body = present((await deps.status.refresh(view.id)) as UploadView);
  });

  router.post("/uploads/:id/redrive", async (ctx) => {
    const { tenant } = ctx.state;
    const view = await owned(ctx.params.id as string, tenant);
    if (!["failed", "queued", "processing"].includes(view.status)) {
      throw new AppError(
        "Conflict",
        `upload ${view.id} is ${view.status}; only a failed upload's batches can be re-driven`,
      );
    }
    const moved = (await deps.redrive(view.id)).moved.get(view.id) ?? 0;
    if (moved === 0 && view.status === "failed") {
      throw new AppError(
        "NothingToRedrive",
        `no dead-lettered batch of upload ${view.id} waits; send the file again`,
      );
    }
    // Publishing stopped when the upload failed while it waited for landing; the re-drive
    // published the rest (core/redrive.ts).
    const current = (await deps.status.refresh(view.id)) as UploadView;
    ctx.body = { ...present(current), redriven: { batches: moved } };
  });

  router.get("/uploads/:id/events", async (ctx) => {
    const { tenant } = ctx.state;
    const view = await owned(ctx.params.id as string, tenant);
    // An EventSource reconnects after every end of stream; a 204 is what makes it stop.
    if (ctx.get("last-event-id") && isFinal(view.status)) {
      ctx.status = 204;
      return;
    }
    const release = streams.take(tenant);
    if (release === "full") {
      throw new AppError(
        "Busy",
        "the server keeps as many progress streams open as it can; retry",
        { retryAfterSeconds: STREAM_RETRY_AFTER_SECONDS },
      );
    }
    if (release === "tenant-full") {
      throw new AppError(
        "TooManyProgressStreams",
        `${deps.progressLimits.perTenant} progress streams of yours are open on this server; close one`,
        {
          details: { limit: deps.progressLimits.perTenant },
        },
      );
    }
    let stream: Readable;
    try {
      stream = await openProgressStream({
        uploadId: view.id,
        hub: deps.progress,
        current: () => deps.status.get(view.id),
        heartbeatMs: HEARTBEAT_MS,
      });
    } catch (err) {
      release();
      throw err;
    }
    deps.metrics.progressStreams.inc();
    // The server keeps answering a client that closed its sending side (api.ts); a stream of
    // events reads nothing more from it, so that close means the client has gone. The
    // connection may carry further requests (a page follows upload after upload on one):
    // the listener goes with the stream.
    const socket = ctx.req.socket;
    const clientGone = () => stream.destroy();
    socket.once("end", clientGone);
    stream.once("close", () => {
      socket.off("end", clientGone);
      release();
      deps.metrics.progressStreams.dec();
    });
    ctx.res.once("close", () => stream.destroy());
    socket.setTimeout(0);
    ctx.type = "text/event-stream";
    // Proxies such as nginx would otherwise hold events back in their buffers.
    ctx.set("X-Accel-Buffering", "no");
    ctx.body = stream;
  });

  router.get("/uploads/:id/errors", async (ctx) => {
    const { tenant } = ctx.state;
    const view = await owned(ctx.params.id as string, tenant);
    // Read before answering, so that a failure here is still a JSON error, not a 200 cut off.
    const first = await rowErrorsPage(deps.db, view.id, 0);
    ctx.type = "text/csv; charset=utf-8";
    ctx.set("Content-Disposition", `attachment; filename="${view.id}-errors.csv"`);
    ctx.body = Readable.from(rowErrorsCsv(deps.db, view.id, first));
  });

  return router;
}

const csvField = (value: string | number) => {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

const ROW_ERRORS_PAGE = 5000;

const rowErrorsPage = (db: Db, uploadId: string, after: number) =>
  rowErrorsAfter(db, uploadId, after, ROW_ERRORS_PAGE);

/** Streams the rejected rows page by page, so a file with millions of them stays cheap. */
async function* rowErrorsCsv(
  db: Db,
  uploadId: string,
  first: Awaited<ReturnType<typeof rowErrorsPage>>,
): AsyncGenerator<string> {
  yield "row,line,code,message\n";
  for (let page = first; page.length > 0; ) {
    yield `${page.map((e) => [e.row_number, e.line, e.code, e.message].map(csvField).join(",")).join("\n")}\n`;
    const last = page.at(-1)?.row_number ?? 0;
    page = page.length < ROW_ERRORS_PAGE ? [] : await rowErrorsPage(db, uploadId, last);
  }
}
