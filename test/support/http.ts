// Calls to a running api or ops server, for the tests, the fault suite and the benchmark.
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { type IncomingHttpHeaders, request } from "node:http";

export async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: any }> {
  const response = await fetch(url, init).catch((err: unknown) => {
    throw requestFailed(init?.method ?? "GET", url, err);
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * A request that got no answer, as an error naming it and why: fetch itself says only
 * "fetch failed", with the reason (refused, reset, timed out) in its cause.
 */
export function requestFailed(method: string, url: string, err: unknown): Error {
  const reasons: string[] = [];
  for (let at: unknown = err; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    const inner =
      at instanceof AggregateError ? at.errors.map((e: Error) => e.message).join(", ") : "";
    reasons.push(
      [at.message, inner, code && !at.message.includes(code) ? code : ""].filter(Boolean).join(" "),
    );
  }
  return new Error(`${method} ${url}: ${reasons.join(": ") || String(err)}`, { cause: err });
}

const parsed = (text: string) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/**
 * One call to the api, as the tenant whose API key is `key` when one is given, with a body of
 * `type` (CSV unless said) when given: status, headers, text and parsed JSON.
 */
export async function callApi(
  base: string,
  method: string,
  path: string,
  body?: string,
  { key, type = "text/csv" }: { key?: string; type?: string } = {},
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { "content-type": type }),
    },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: parsed(text) };
}

/** POSTs `csv` to the api at `base` as a text/csv upload; the upload, which must be accepted (202). */
export async function acceptedUpload(
  base: string,
  csv: string,
): Promise<{ id: string; [field: string]: any }> {
  const accepted = await callApi(base, "POST", "/uploads", csv);
  assert.equal(accepted.status, 202, accepted.text);
  return accepted.body;
}

export type Posted = { status: number; headers: IncomingHttpHeaders; text: string; body: any };

/**
 * POSTs a CSV file to `url` (an api's /uploads, with any query): the text itself, or a file
 * on disk streamed with its length, as a client sends a large file. Resolves at the answer.
 */
export function postCsv(
  url: string,
  csv: string | Uint8Array | { file: string; bytes: number },
  headers: Record<string, string> = {},
): Promise<Posted> {
  const onDisk = typeof csv === "object" && "file" in csv ? csv : undefined;
  const length = onDisk ? onDisk.bytes : Buffer.byteLength(csv as string | Uint8Array);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: { "content-type": "text/csv", "content-length": String(length), ...headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed(text) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (onDisk) createReadStream(onDisk.file).on("error", reject).pipe(req);
    else req.end(csv);
  });
}

/** The value of one sample of a program's /metrics, e.g. `sluice_uploads_stuck`, if it has one. */
export async function metricSample(
  url: string,
  name: string,
  labels = "",
): Promise<number | undefined> {
  const metricsUrl = `${url}/metrics`;
  const response = await fetch(metricsUrl).catch((err: unknown) => {
    throw requestFailed("GET", metricsUrl, err);
  });
  const text = await response.text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}{`) && labels.split(",").every((label) => l.includes(label)));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

/** Whether a program's /readyz answers 2xx now; a refused connection is "no". */
export const isReady = (url: string): Promise<boolean> =>
  fetch(`${url}/readyz`).then(
    (r) => r.ok,
    () => false,
  );
