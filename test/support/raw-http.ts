// An HTTP/1.1 client on a bare socket, for requests no well-behaved client sends: cut at any
// byte, closed, stalled, or sent a byte at a time.
import { connect, type Socket } from "node:net";

export type RawAnswer = {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The JSON body, when the answer has one. */
  body: any;
};

/** Settles with the server's answer, or with `undefined` when the socket closed without one. */
export type RawExchange = {
  socket: Socket;
  answered: Promise<RawAnswer | undefined>;
  write(bytes: string | Buffer): void;
};

function parse(received: Buffer): RawAnswer | undefined {
  const end = received.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine = "", ...lines] = received.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = received.subarray(end + 4);
  const length = Number(headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(length) && body.length < length) return undefined;
  const text = body.toString("utf8");
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    text,
    body: headers["content-type"]?.startsWith("application/json") ? JSON.parse(text) : undefined,
  };
}

/**
 * Opens a connection and sends `head` (the request line and headers, without the blank line
 * that ends them); the test writes the body as it likes.
 */
export function rawRequest(url: string, head: string): RawExchange {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = Buffer.alloc(0);
  const answered = new Promise<RawAnswer | undefined>((resolve) => {
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parse(received);
      if (answer) {
        resolve(answer);
        socket.destroy();
      }
    });
    // A reset after the answer or before one: either way the answer is what was received.
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(parse(received)));
  });
  socket.write(`${head.replace(/\r\n$/, "")}\r\n\r\n`);
  return { socket, answered, write: (bytes) => socket.write(bytes) };
}

/** The request line and headers of an upload. */
export function uploadHead(
  options: { key?: string; contentType: string; length?: number; extra?: string[] },
  path = "/uploads",
): string {
  return [
    `POST ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    `Content-Type: ${options.contentType}`,
    ...(options.key ? [`Authorization: Bearer ${options.key}`] : []),
    options.length === undefined
      ? "Transfer-Encoding: chunked"
      : `Content-Length: ${options.length}`,
    ...(options.extra ?? []),
  ].join("\r\n");
}

export const BOUNDARY = "sluice-B0undary";

/** A multipart body: a text field, then the file part, then the closing boundary. */
export function multipartBody(
  csv: string,
  options: { field?: string; filename?: string; before?: string } = {},
): Buffer {
  const field = options.field ?? "file";
  const filename = options.filename ?? "people.csv";
  return Buffer.from(
    [
      `--${BOUNDARY}\r\n`,
      'Content-Disposition: form-data; name="note"\r\n\r\n',
      `${options.before ?? "a note"}\r\n`,
      `--${BOUNDARY}\r\n`,
      `Content-Disposition: form-data; name="${field}"; filename="${filename}"\r\n`,
      "Content-Type: text/csv\r\n\r\n",
      csv,
      `\r\n--${BOUNDARY}--\r\n`,
    ].join(""),
  );
}
