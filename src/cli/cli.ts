// The `sluice` command line: upload a CSV file and watch it land, or look at uploads.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { parse } from "csv-parse";
import { ApiError, BaseUrlError, type Client, createClient } from "./client.ts";
import { createUploadBars } from "./progress-bars.ts";
import { type Upload, uploadFile } from "./upload.ts";

export const USAGE = `Usage: sluice <command> [options]      (also: kubectl sluice <command> [options])

Commands:
  upload FILE      send a CSV file; shows the bytes sent, then the rows landed, and exits 0
                   once the upload is completed, 1 with the reason otherwise
  status ID        an upload's status, rows, batches and reason
  list             your uploads, newest first (--limit N, --after ID)
  errors ID        the rejected rows of an upload, as CSV (row,line,code,message)
  cancel ID        cancels an unfinished upload

Options:
  --json                 one JSON document on stdout, for scripts (no progress bars)
  --encoding NAME        upload: latin1 or windows-1252 for a legacy file
  --delimiter D          upload: , ; tab or pipe (detected from the header when not given)
  --idempotency-key KEY  upload: a retry with the same key never loads the file twice
  --target NAME          upload: land the rows typed in that target's table (PUT /targets/NAME)
  --limit N, --after ID  list: page size (1 to 100, default 20) and the page after ID
  -h, --help             this help

Environment:
  SLUICE_URL       the api, e.g. https://sluice.example.com (default http://localhost:3000)
  SLUICE_API_KEY   a key of the api's API_KEYS, sent as Authorization: Bearer <key>

Exit status: 0 done; 1 the api refused, the upload did not complete, or no answer; 2 usage.`;

export type CliIo = Readonly<{
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Whether to draw progress bars: stderr is a terminal. */
  interactive: boolean;
  env: Readonly<{ url: string | undefined; apiKey: string | undefined }>;
}>;

class UsageError extends Error {}

/** Runs one command line; resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (err) {
    io.stderr.write(`sluice: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (command === undefined && !values.help) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (values.help || command === "help") {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const print = (human: string, json: unknown) =>
    io.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${human}\n`);
  try {
    const client = createClient({
      url: io.env.url || "http://localhost:3000",
      apiKey: io.env.apiKey || undefined,
    });
    switch (command) {
      case "upload": {
        const file = only(rest, "upload needs one FILE");
        const bars = io.interactive && !values.json ? createUploadBars(io.stderr) : undefined;
        const upload = await uploadFile(
          client,
          file,
          {
            encoding: values.encoding,
            delimiter: values.delimiter,
            idempotencyKey: values["idempotency-key"],
            target: values.target,
          },
          {
            sending: (sent, total) => bars?.sending(sent, total),
            accepted: (accepted) => {
              bars?.accepted(accepted);
              if (!bars && !values.json) {
                io.stderr.write(`${accepted.id}: stored, ${rowsLine(accepted)}; landing\n`);
              }
            },
            progress: (event) => bars?.progress(event),
          },
        ).finally(() => bars?.stop());
        print(outcome(upload), upload);
        if (upload.status !== "completed") {
          if (!values.json) io.stderr.write(`sluice: ${failure(upload)}\n`);
          return 1;
        }
        return 0;
      }
      case "status": {
        const upload = await client.json<Upload>("GET", `/uploads/${idOf(rest)}`);
        print(describe(upload), upload);
        return 0;
      }
      case "list": {
        if (rest.length > 0) throw new UsageError("list takes no argument");
        const query = new URLSearchParams();
        if (values.limit !== undefined) query.set("limit", values.limit);
        if (values.after !== undefined) query.set("after", values.after);
        const page = await client.json<{ items: Upload[]; next: string | null }>(
          "GET",
          `/uploads${query.size > 0 ? `?${query}` : ""}`,
        );
        print(table(page.items, page.next), page);
        return 0;
      }
      case "errors":
        await rowErrors(client, idOf(rest), values.json === true, io.stdout);
        return 0;
      case "cancel": {
        const upload = await client.json<Upload>("DELETE", `/uploads/${idOf(rest)}`);
        print(`${upload.id}: cancelled; ${upload.rowsLanded} rows had landed`, upload);
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`sluice: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof ApiError) {
      if (values.json) io.stdout.write(`${JSON.stringify({ error: err.body })}\n`);
      io.stderr.write(`sluice: ${explain(err)}\n`);
      return 1;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
      io.stderr.write(`sluice: ${(err as Error).message}\n`);
      return 1;
    }
    if (err instanceof BaseUrlError) {
      io.stderr.write(`sluice: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

function parseCommandLine(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      encoding: { type: "string" },
      delimiter: { type: "string" },
      "idempotency-key": { type: "string" },
      target: { type: "string" },
      limit: { type: "string" },
      after: { type: "string" },
    },
  });
}

function only(rest: string[], message: string): string {
  if (rest.length !== 1) throw new UsageError(message);
  return rest[0] as string;
}

/** An id goes into a path: anything else than an id's characters would change the path. */
function idOf(rest: string[]): string {
  const id = only(rest, "give one upload ID");
  if (!/^[0-9A-Za-z-]+$/.test(id)) throw new UsageError(`not an upload ID: ${id}`);
  return id;
}

const count = (n: number | null) => (n === null ? "?" : n.toLocaleString("en-US"));

function rowsLine(upload: Upload): string {
  return `${count(upload.rows)} rows, ${count(upload.rowErrors)} row errors`;
}

function outcome(upload: Upload): string {
  const landed = `${count(upload.rowsLanded)} of ${count(upload.rows)} rows landed`;
  const errors =
    upload.rowErrors > 0
      ? `; ${count(upload.rowErrors)} row errors (sluice errors ${upload.id})`
      : "";
  return `${upload.id}: ${upload.status}, ${landed}${errors}`;
}

function failure(upload: Upload): string {
  const reason = upload.error ? `: ${upload.error.code}: ${upload.error.message}` : "";
  return `upload ${upload.id} is ${upload.status}${reason}`;
}

function explain(err: ApiError): string {
  const where = ["line", "column", "byte"]
    .filter((k) => err.body[k as "line"] !== undefined)
    .map((k) => `${k} ${err.body[k as "line"]}`)
    .join(", ");
  const status = err.status === 0 ? "" : ` (HTTP ${err.status})`;
  return `${err.body.code}: ${err.body.message}${where ? ` (${where})` : ""}${status}`;
}

function describe(upload: Upload): string {
  const lines: Array<[string, string]> = [
    ["id", upload.id],
    [
      "status",
      upload.stalled ? `${upload.status} (stalled: ${upload.stalledReason})` : upload.status,
    ],
    ["file", `${upload.filename ?? "(raw body)"}, ${count(upload.bytes)} bytes`],
    [
      "rows",
      `${count(upload.rows)}: ${count(upload.rowsLanded)} landed, ${count(upload.rowErrors)} row errors`,
    ],
    ["batches", `${count(upload.batches.landed)} landed of ${count(upload.batches.total)}`],
    ["created", upload.createdAt],
  ];
  if (upload.completedAt) lines.push(["finished", upload.completedAt]);
  if (upload.purgedAt) lines.push(["purged", upload.purgedAt]);
  if (upload.error) lines.push(["reason", `${upload.error.code}: ${upload.error.message}`]);
  return lines.map(([k, v]) => `${k.padEnd(8)} ${v}`).join("\n");
}

function table(items: Upload[], next: string | null): string {
  const rows = items.map((u) => [
    u.id,
    u.status,
    count(u.rows),
    count(u.rowsLanded),
    count(u.rowErrors),
    u.createdAt,
    u.filename ?? "",
  ]);
  const header = ["ID", "STATUS", "ROWS", "LANDED", "ERRORS", "CREATED", "FILE"];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] as string).length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join("  ")
      .trimEnd();
  const after = next
    ? `\nmore: sluice list --after ${new URLSearchParams(next.split("?")[1]).get("after")}`
    : "";
  return [line(header), ...rows.map(line)].join("\n") + after;
}

/** The CSV as the api sends it, or with --json an array of {row, line, code, message}. */
async function rowErrors(
  client: Client,
  id: string,
  json: boolean,
  stdout: NodeJS.WritableStream,
): Promise<void> {
  const response = await client.request("GET", `/uploads/${id}/errors`);
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream);
  if (!json) {
    await pipeline(body, stdout, { end: false });
    return;
  }
  let first = true;
  stdout.write("[");
  await pipeline(
    body,
    parse({
      columns: true,
      cast: (value, { column }) => (column === "row" || column === "line" ? Number(value) : value),
    }),
    async (records: AsyncIterable<Record<string, unknown>>) => {
      for await (const record of records) {
        stdout.write(`${first ? "" : ","}\n${JSON.stringify(record)}`);
        first = false;
      }
    },
  );
  stdout.write(first ? "]\n" : "\n]\n");
}
