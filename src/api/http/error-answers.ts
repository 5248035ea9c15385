// The HTTP edge's one table: the status and headers each error code is answered with. Only
// this module and the error-answering middleware (app.ts) turn codes into statuses.
import type { AppError, ErrorCode } from "./app-error.ts";

type Answer = Readonly<{
  status: number;
  /** Retry-After, in seconds: the refusal is for now only. */
  retryAfterSeconds?: number;
  headers?: Readonly<Record<string, string>>;
}>;

/**
 * Seconds a client waits before sending a body again when the api is short of room for it
 * now (its places, its parsing thread, its stop): bodies take a while to arrive, and another
 * replica may take the retry.
 */
const BODY_RETRY = 5;

export const ERROR_ANSWERS: Readonly<Record<ErrorCode, Answer>> = {
  // The file.
  EmptyFile: { status: 400 },
  NotCsv: { status: 415 },
  InvalidEncoding: { status: 422 },
  UnterminatedQuote: { status: 422 },
  InvalidHeader: { status: 422 },
  TooManyColumns: { status: 422 },
  HeaderTooLarge: { status: 422 },
  NoDataRows: { status: 422 },
  MissingColumns: { status: 422 },
  UnmappedColumns: { status: 422 },
  // The request.
  InvalidParameter: { status: 400 },
  InvalidMultipart: { status: 400 },
  MissingFile: { status: 400 },
  InvalidBody: { status: 400 },
  Closed: { status: 400 },
  Unauthorized: { status: 401, headers: { "www-authenticate": 'Bearer realm="sluice"' } },
  NotFound: { status: 404 },
  MethodNotAllowed: { status: 405 },
  FormTimeout: { status: 408 },
  IdleTimeout: { status: 408 },
  Cancelled: { status: 409 },
  Conflict: { status: 409 },
  // The first attempt's body is still arriving.
  IdempotencyKeyInUse: { status: 409, retryAfterSeconds: 5 },
  NothingToRedrive: { status: 409 },
  FormTooLarge: { status: 413 },
  TooLarge: { status: 413 },
  UnsupportedEncoding: { status: 415 },
  UnsupportedMediaType: { status: 415 },
  IdempotencyKeyReused: { status: 422 },
  InvalidTarget: { status: 422 },
  UnknownTarget: { status: 422 },
  // Limits of the tenant: an upload in progress takes a while to finish.
  TooManyActiveUploads: { status: 429, retryAfterSeconds: 30 },
  TooManyConcurrentUploads: { status: 429, retryAfterSeconds: BODY_RETRY },
  // A progress stream stays open for as long as its upload runs.
  TooManyProgressStreams: { status: 429, retryAfterSeconds: 30 },
  // Faults and limits of the api.
  Internal: { status: 500 },
  Busy: { status: 503, retryAfterSeconds: BODY_RETRY },
  Interrupted: { status: 503, retryAfterSeconds: BODY_RETRY },
  ShuttingDown: { status: 503, retryAfterSeconds: BODY_RETRY },
  // A service out of reach is often back within seconds.
  ServiceUnavailable: { status: 503, retryAfterSeconds: 5 },
  // Room on the disk comes back as uploads are published.
  InsufficientStorage: { status: 507, retryAfterSeconds: 60 },
};

/** The status and headers `err` is answered with. */
export function answerOf(err: AppError): { status: number; headers: Record<string, string> } {
  const answer = ERROR_ANSWERS[err.code];
  const retryAfter = err.retryAfterSeconds ?? answer.retryAfterSeconds;
  return {
    status: answer.status,
    headers: {
      ...answer.headers,
      ...(retryAfter === undefined ? {} : { "retry-after": String(retryAfter) }),
      ...err.headers,
    },
  };
}
