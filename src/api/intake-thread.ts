// The api's parsing thread. Each upload's bytes come here as they arrive and leave as stored
// batches (batch-spool.ts), so that parsing and encoding one chunk overlaps with receiving
// and hashing the next on the main thread. One thread serves every upload of the process.
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { createBatchCutter, frameOf, type SpooledBatch } from "./batch-spool.ts";
import { CsvFormatError, createCsvReader } from "./csv/csv-reader.ts";
import type { FromThread, ToThread } from "./intake-parser.ts";

type Session = {
  path: string;
  fd: number;
  reader: ReturnType<typeof createCsvReader>;
  cutter: ReturnType<typeof createBatchCutter>;
};

const port = parentPort;
if (!port) throw new Error("intake-thread.ts runs as a worker thread");
const sessions = new Map<string, Session>();
const send = (message: FromThread) => port.postMessage(message);

function store(fd: number, batches: SpooledBatch[]): void {
  for (const batch of batches) {
    for (const bytes of frameOf(batch)) {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
    }
  }
}

/** Ends a session; a failed or abandoned upload leaves no file behind. */
function close(id: string, keep: boolean): void {
  const session = sessions.get(id);
  sessions.delete(id);
  if (!session) return;
  closeSync(session.fd);
  if (!keep) rmSync(session.path, { force: true });
}

function fail(id: string, err: unknown): void {
  try {
    close(id, false);
  } catch {
    // The failure being reported matters more than a file that would not close.
  }
  if (err instanceof CsvFormatError) {
    send({
      op: "failed",
      id,
      error: { kind: "csv", code: err.code, message: err.message, details: err.details },
    });
  } else {
    const { message, code } = err as NodeJS.ErrnoException;
    send({ op: "failed", id, error: { kind: "other", message: String(message), code } });
  }
}

port.on("message", (message: ToThread) => {
  const { id } = message;
  try {
    switch (message.op) {
      case "open": {
        const cutter = createBatchCutter(id, message.batchSize);
        const fd = openSync(message.path, "wx");
        const reader = createCsvReader(message.csv, cutter.sink);
        sessions.set(id, { path: message.path, fd, cutter, reader });
        break;
      }
      case "chunk": {
        const session = sessions.get(id);
        if (!session) return;
        session.reader.push(message.chunk);
        store(session.fd, session.cutter.take());
        send({ op: "parsed", id });
        break;
      }
      case "end": {
        const session = sessions.get(id);
        if (!session) return;
        const summary = session.reader.end();
        store(session.fd, session.cutter.end());
        close(id, true);
        send({ op: "done", id, parsed: { summary, batches: session.cutter.count() } });
        break;
      }
      case "abort":
        close(id, false);
        send({ op: "aborted", id });
        break;
    }
  } catch (err) {
    fail(id, err);
  }
});
