// The command line's calls to the api: the key always in Authorization, never in a URL, and
// every error answer turned into an ApiError with Sluice's code and message.

export type ClientOptions = Readonly<{ url: string; apiKey: string | undefined }>;

export type ErrorBody = {
  code: string;
  message: string;
  line?: number;
  column?: number;
  byte?: number;
  details?: Record<string, unknown>;
};

/** An error answer of the api, or no answer at all (status 0). */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly body: ErrorBody;

  constructor(status: number, body: ErrorBody, options: { cause?: unknown } = {}) {
    super(`${body.code}: ${body.message}`, options);
    this.status = status;
    this.body = body;
  }
}

export type Client = Readonly<{
  base: string;
  /** The answer when its status is below 400; otherwise throws ApiError. */
  request(method: string, path: string, init?: RequestInit): Promise<Response>;
  json<T>(method: string, path: string): Promise<T>;
}>;

/** SLUICE_URL is unusable: a usage error, said without the usage. */
export class BaseUrlError extends Error {
  override name = "BaseUrlError";
}

/** Refuses what would send the key where it must not go: a URL holding credentials. */
export function parseBaseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BaseUrlError(`SLUICE_URL is not a URL: ${value}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BaseUrlError(`SLUICE_URL must be an http or https URL, not ${url.protocol}`);
  }
  if (url.username || url.password) {
    throw new BaseUrlError("SLUICE_URL must not hold credentials; set SLUICE_API_KEY instead");
  }
  if (url.search || url.hash)
    throw new BaseUrlError("SLUICE_URL must not have a query or fragment");
  return url;
}

export function createClient(options: ClientOptions): Client {
  const base = parseBaseUrl(options.url).href.replace(/\/+$/, "");
  const auth: Record<string, string> = options.apiKey
    ? { authorization: `Bearer ${options.apiKey}` }
    : {};

  async function request(method: string, path: string, init: RequestInit = {}) {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        ...init,
        method,
        headers: { ...auth, ...(init.headers as Record<string, string> | undefined) },
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(
        0,
        {
          code: "Unreachable",
          message: `no answer from ${base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
        },
        { cause: err },
      );
    }
    if (response.status < 400) return response;
    throw new ApiError(response.status, await errorBody(response));
  }

  return {
    base,
    request,
    async json<T>(method: string, path: string): Promise<T> {
      return (await (await request(method, path)).json()) as T;
    },
  };
}

/** Sluice's JSON error, or what stands in for it when something else answered. */
async function errorBody(response: Response): Promise<ErrorBody> {
  const text = await response.text().catch(() => "");
  try {
    const parsed = JSON.parse(text) as { error?: ErrorBody };
    if (typeof parsed.error?.code === "string") return parsed.error;
  } catch {}
  return { code: `HTTP${response.status}`, message: text.slice(0, 200) || response.statusText };
}
