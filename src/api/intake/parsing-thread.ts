// The api's parsing thread. Each upload's bytes come here as they arrive and leave as stored
// batches (batch-spool.ts), so that parsing and encoding one chunk overlaps with receiving
// and hashing the next on the main thread. One thread serves every upload of the process.
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { getHeapStatistics } from "node:v8";
import { parentPort } from "node:worker_threads";
import { createBatchCutter, frameOf, type SpooledBatch } from "./batch-spool.ts";
import { CsvFormatError, createCsvReader } from "./csv/csv-reader.ts";
import type { FromThread, ToThread } from "./parsing-thread-client.ts";
import { targetSink } from "./target-sink.ts";

type Session = {
  path: string;
  fd: number;
  reader: ReturnType<typeof createCsvReader>;
  cutter: ReturnType<typeof createBatchCutter>;
  /** Rows its target's checks kept out. */
  rejected: () => number;
  /** Bytes of heap its text holds between chunks, at most: two per UTF-16 unit. */
  held: number;
};

/**
 * What the uploads together may hold between chunks: half the heap, the rest being room for
 * the chunk at work and for garbage. Each upload holds one batch in the making and one record
 * (BATCH_TEXT_LIMIT, MAX_ROW_BYTES), so this is reached only by many wide uploads at once;
 * the one that would pass it is refused as Busy, rather than the heap running out under all.
 */
const HELD_BUDGET = getHeapStatistics().heap_size_limit / 2;
let heldTotal = 0;

const port = parentPort;
if (!port)
  throw new Error(
    "parsing-thread.ts runs as the api's parsing thread, started by parsing-thread-client.ts",
  );
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
  heldTotal -= session.held;
  closeSync(session.fd);
  if (!keep) rmSync(session.path, { force: true });
}

function fail(id: string, err: unknown): void {
  try {
    close(id, false);
  } catch {
    // The failure being reported matters more than a file that would not close.
  }
  if (err instanceof BusyError) {
    send({ op: "failed", id, error: { kind: "busy", message: err.message } });
  } else if (err instanceof CsvFormatError) {
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

class BusyError extends Error {}

/** Counts what the session holds now, and refuses it if all together hold too much. */
function account(session: Session): void {
  const held = 2 * (session.cutter.size() + session.reader.heldChars());
  heldTotal += held - session.held;
  session.held = held;
  if (heldTotal > HELD_BUDGET) {
    throw new BusyError("the api holds too much of the uploads it parses now; try again shortly");
  }
}

port.on("message", (message: ToThread) => {
  const { id } = message;
  try {
    switch (message.op) {
      case "open": {
        const cutter = createBatchCutter(id, message.batchSize);
        const fd = openSync(message.path, "wx");
        const checked = message.target
          ? targetSink(cutter.sink, message.target, () => reader.recordLine())
          : undefined;
        const reader = createCsvReader(message.csv, checked?.sink ?? cutter.sink);
        sessions.set(id, {
          path: message.path,
          fd,
          cutter,
          reader,
          held: 0,
          rejected: checked?.rejected ?? (() => 0),
        });
        break;
      }
      case "chunk": {
        const session = sessions.get(id);
        if (!session) return;
        session.reader.push(message.chunk);
        store(session.fd, session.cutter.take());
        account(session);
        send({ op: "parsed", id });
        break;
      }
      case "end": {
        const session = sessions.get(id);
        if (!session) return;
        const read = session.reader.end();
        // Rows whose values do not convert are row errors too, though the reader read them well.
        const rejected = session.rejected();
        const summary = {
          ...read,
          goodRows: read.goodRows - rejected,
          rowErrors: read.rowErrors + rejected,
        };
        store(session.fd, session.cutter.end());
        close(id, true);
        send({ op: "done", id, parsed: { summary, batches: session.cutter.count() } });
        break;
      }
      case "abort":
        close(id, false);
        send({ op: "aborted", id });
        break;
      case "crash":
        // Outside this handler's catch, so that nothing here hears of it.
        setImmediate(() => {
          throw new Error("the parsing-thread fault point was reached");
        });
        break;
    }
  } catch (err) {
    fail(id, err);
  }
});
