// Opens an upload request's body as the file's bytes: the raw body, or the multipart part
// named "file". Whatever the client does (ends the form early, goes away at any byte, stalls,
// trickles a field, sends too much), what this returns settles with the file or an AppError,
// and nothing is left listening or reading.
import type { IncomingMessage } from "node:http";
import { PassThrough, pipeline, Transform } from "node:stream";
import busboy from "busboy";
import { AppError } from "./app-error.ts";

export type UploadBody = {
  stream: AsyncIterable<Buffer>;
  filename: string | null;
  /** Stops reading the body: call it once the file is read or no longer wanted. */
  close(): void;
};

export type BodyLimits = Readonly<{
  /** The whole body, every part of a form included. */
  maxBytes: number;
  /** How long a multipart body may take to reach its file part. */
  formTimeoutMs: number;
}>;

/**
 * Bytes a form may hold before its file part: room for a few text fields, not for a client
 * that sends a field without end to hold a place.
 */
export const FORM_BYTES_BEFORE_FILE = 64 * 1024;

const RAW_TYPES = new Set([
  "text/csv",
  "text/plain",
  "application/csv",
  "text/tab-separated-values",
  "application/octet-stream",
]);

/** Transfer encodings of a part whose bytes are the file's bytes as they are. */
const PLAIN_PART_ENCODINGS = new Set(["7bit", "8bit", "binary"]);

const tooLarge = (maxBytes: number) =>
  new AppError("TooLarge", `the upload is larger than the limit of ${maxBytes} bytes`, {
    where: { byte: maxBytes },
  });

/** Refuses what Sluice cannot read, or would refuse once read, before a byte of the body is. */
export function checkBodyHeaders(req: IncomingMessage, limits: BodyLimits): void {
  // The client learns now, not after sending the limit's worth of bytes.
  if (Number(req.headers["content-length"]) > limits.maxBytes) throw tooLarge(limits.maxBytes);
  const encoding = (req.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity") {
    throw new AppError(
      "UnsupportedEncoding",
      "Content-Encoding is not accepted; send the file as it is",
    );
  }
  const type = mediaType(req);
  if (type !== "" && !RAW_TYPES.has(type) && type !== "multipart/form-data") {
    throw new AppError(
      "UnsupportedMediaType",
      `Content-Type ${type} is not accepted; send text/csv or multipart/form-data with a "file" field`,
    );
  }
}

function mediaType(req: IncomingMessage): string {
  return (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/** Call checkBodyHeaders first, before taking anything for the upload. */
export function openUploadBody(req: IncomingMessage, limits: BodyLimits): Promise<UploadBody> {
  if (mediaType(req) !== "multipart/form-data") {
    // A raw body is read by its upload to the end, or the request ends with the answer. An
    // upload that stops reading must not destroy the request, as its iterator's return would:
    // what the client still sends is discarded after the answer (lingering-close.ts).
    const stream = { [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }) };
    return Promise.resolve({ stream, filename: null, close: () => undefined });
  }
  return openMultipart(req, limits);
}

const cutShort = (cause?: unknown) =>
  new AppError("InvalidBody", "the request body could not be read to its end", { cause });

/** What a failure of the request or of busboy means to the client. */
function bodyError(err: Error): AppError {
  if (err instanceof AppError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ECONNRESET") return cutShort(err);
  // busboy's messages are its own fixed sentences ("Unexpected end of form"), never input.
  return new AppError("InvalidMultipart", `the multipart body is malformed: ${err.message}`, {
    cause: err,
  });
}

function openMultipart(req: IncomingMessage, limits: BodyLimits): Promise<UploadBody> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // File names arrive as UTF-8 from every current browser and HTTP client.
      parser = busboy({ headers: req.headers, defParamCharset: "utf8" });
    } catch (err) {
      reject(
        new AppError("InvalidMultipart", "the multipart body has no valid boundary", {
          cause: err,
        }),
      );
      return;
    }
    // The file's bytes, ended only once the whole form has been read and found well formed.
    const file = new PassThrough();
    // Its reader sees any error through its iteration; until it starts, nothing else must.
    file.on("error", () => undefined);
    let found = false;
    let settled = false;
    let bytes = 0;

    const fail = (err: AppError) => {
      if (settled) return;
      settled = true;
      clearTimeout(formTimer);
      if (found) file.destroy(err);
      else reject(err);
      // Stops reading the request; the pipeline's end then changes nothing.
      counter.destroy(err);
    };

    const formTimer = setTimeout(
      () =>
        fail(
          new AppError(
            "FormTimeout",
            `the multipart body did not reach its "file" part within ${limits.formTimeoutMs} ms`,
          ),
        ),
      limits.formTimeoutMs,
    );

    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > limits.maxBytes) return done(tooLarge(limits.maxBytes));
        // Counted before this chunk, which may hold the start of the file itself.
        if (!found && bytes - chunk.length > FORM_BYTES_BEFORE_FILE) {
          return done(
            new AppError(
              "FormTooLarge",
              `the multipart body holds more than ${FORM_BYTES_BEFORE_FILE} bytes before its "file" part`,
            ),
          );
        }
        done(null, chunk);
      },
    });

    parser.on("file", (field, stream, info) => {
      // Errors of a part reach the pipeline through busboy too.
      stream.on("error", () => undefined);
      if (field !== "file" || found) {
        stream.resume();
        fail(
          new AppError("InvalidMultipart", 'a multipart upload holds one file part, named "file"'),
        );
        return;
      }
      if (!PLAIN_PART_ENCODINGS.has(info.encoding.toLowerCase())) {
        stream.resume();
        fail(
          new AppError(
            "UnsupportedEncoding",
            "the file part's Content-Transfer-Encoding is not accepted; send the file as it is",
          ),
        );
        return;
      }
      found = true;
      clearTimeout(formTimer);
      stream.pipe(file, { end: false });
      resolve({
        stream: file,
        filename: info.filename ?? null,
        close: () => fail(new AppError("Closed", "the upload stopped reading its body")),
      });
    });

    // Not in the pipeline: a failure must stop reading the request without destroying it,
    // so that the client still gets its answer.
    req.on("error", (err) => fail(bodyError(err)));
    req.on("close", () => {
      if (!req.complete) fail(cutShort());
    });
    req.pipe(counter);
    pipeline(counter, parser, (err) => {
      clearTimeout(formTimer);
      if (err) return fail(bodyError(err));
      if (settled) return;
      settled = true;
      if (found) file.end();
      else reject(new AppError("MissingFile", 'the multipart body has no "file" field'));
    });
  });
}
