// The api's one error type: a stable code, an HTTP status, and where in the file it applies.
export type Where = { line?: number; column?: number; byte?: number };

export class AppError extends Error {
  override name = "AppError";
  readonly code: string;
  readonly status: number;
  readonly where: Where;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: {
      where?: Where;
      details?: Record<string, unknown>;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = status;
    this.where = options.where ?? {};
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  /** The same error, saying which upload it was recorded under. */
  forUpload(uploadId: string): AppError {
    return new AppError(this.code, this.status, this.message, {
      where: this.where,
      details: { ...this.details, uploadId },
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
