// The api's one error type: a stable code, a message, and where in the file it applies. It
// knows no HTTP status: error-answers.ts, at the HTTP edge, gives each code its status and
// headers.
import { CSV_FORMAT_ERROR_CODES } from "../intake/csv/csv-reader.ts";

/** Every code an api error may carry; README's error tables and openapi.json list them. */
export const ERROR_CODES = [
  ...CSV_FORMAT_ERROR_CODES,
  "InvalidParameter",
  "InvalidMultipart",
  "MissingFile",
  "InvalidBody",
  "Closed",
  "Unauthorized",
  "NotFound",
  "MethodNotAllowed",
  "FormTimeout",
  "IdleTimeout",
  "Cancelled",
  "Conflict",
  "IdempotencyKeyInUse",
  "NothingToRedrive",
  "FormTooLarge",
  "TooLarge",
  "UnsupportedEncoding",
  "UnsupportedMediaType",
  "IdempotencyKeyReused",
  "InvalidTarget",
  "UnknownTarget",
  "TooManyActiveUploads",
  "TooManyConcurrentUploads",
  "TooManyProgressStreams",
  "Internal",
  "Busy",
  "Interrupted",
  "ShuttingDown",
  "ServiceUnavailable",
  "InsufficientStorage",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type Where = { line?: number; column?: number; byte?: number };

export type AppErrorOptions = {
  where?: Where;
  details?: Record<string, unknown>;
  /**
   * How long the client should wait before trying again, when this refusal differs from its
   * code's usual wait (error-answers.ts).
   */
  retryAfterSeconds?: number;
  /** Headers only the HTTP edge itself knows: an authentication challenge, the methods allowed. */
  headers?: Record<string, string>;
  cause?: unknown;
};

export class AppError extends Error {
  override name = "AppError";
  readonly code: ErrorCode;
  readonly where: Where;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.where = options.where ?? {};
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers ?? {};
  }

  /** The same error, saying which upload it was recorded under. */
  forUpload(uploadId: string): AppError {
    return new AppError(this.code, this.message, {
      where: this.where,
      details: { ...this.details, uploadId },
      retryAfterSeconds: this.retryAfterSeconds,
      headers: this.headers,
      cause: this.cause,
    });
  }

  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...this.where,
        ...(this.details ? { details: this.details } : {}),
      },
    };
  }
}
