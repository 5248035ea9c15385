// The main thread's side of the parsing thread (parsing-thread.ts): one session per upload,
// a bounded number of chunks on their way, and the thread's verdict as a promise.
import { extname } from "node:path";
import { Worker as ParsingThread } from "node:worker_threads";
import { type Faults, NO_FAULTS } from "../../core/faults.ts";
import type { TargetSnapshot } from "../../core/targets/target-definition.ts";
import { AppError } from "../http/app-error.ts";
import {
  CsvFormatError,
  type CsvFormatErrorCode,
  type CsvFormatErrorDetails,
  type CsvReaderOptions,
  type CsvSummary,
} from "./csv/csv-reader.ts";

export type ToThread =
  | {
      op: "open";
      id: string;
      path: string;
      batchSize: number;
      csv: CsvReaderOptions;
      target?: TargetSnapshot;
    }
  | { op: "chunk"; id: string; chunk: Uint8Array }
  | { op: "end"; id: string }
  | { op: "abort"; id: string }
  /** The fault suite's parsing-thread point: the thread dies as a bug of its own would kill it. */
  | { op: "crash"; id: string };

/** What a stored upload holds: its records, and the batches they were cut into. */
export type Parsed = { summary: CsvSummary; batches: number };

export type FromThread =
  | { op: "parsed"; id: string }
  | { op: "done"; id: string; parsed: Parsed }
  | { op: "aborted"; id: string }
  | {
      op: "failed";
      id: string;
      error:
        | { kind: "csv"; code: CsvFormatErrorCode; message: string; details: CsvFormatErrorDetails }
        | { kind: "busy"; message: string }
        | { kind: "other"; message: string; code?: string };
    };

export type ParseSession = Readonly<{
  /**
   * Hands the chunk over: one that is the whole of its ArrayBuffer, as a request body's chunks
   * are, is moved rather than copied and left empty. Resolves once there is room for another;
   * rejects with the upload's failure.
   */
  push(chunk: Buffer): Promise<void>;
  /** Every batch is stored; rejects with the upload's failure. */
  end(): Promise<Parsed>;
  /**
   * Stops the session after a failure of the main thread's (a client gone, a size limit);
   * resolves once its file is gone.
   */
  abort(): Promise<void>;
  /** Aborted with the upload's failure as soon as the thread reports one, or is lost. */
  failed: AbortSignal;
}>;

export type ParsingThreadClient = Readonly<{
  open(options: {
    id: string;
    path: string;
    batchSize: number;
    csv: CsvReaderOptions;
    /** Rows go to this target: the header is checked against it, and each row's values. */
    target?: TargetSnapshot;
  }): ParseSession;
  close(): Promise<void>;
}>;

/** Chunks handed over and not yet parsed, per upload: enough to keep the thread busy. */
const CHUNKS_AHEAD = 8;

const THREAD_URL = new URL(`./parsing-thread${extname(import.meta.url)}`, import.meta.url);

type Pending = {
  ahead: number;
  aborted?: () => void;
  room?: () => void;
  failure?: Error;
  failed: AbortController;
  settle: { resolve(parsed: Parsed): void; reject(err: Error): void };
};

function errorOf(error: Extract<FromThread, { op: "failed" }>["error"]): Error {
  if (error.kind === "csv") return new CsvFormatError(error.code, error.message, error.details);
  if (error.kind === "busy") {
    return new AppError("Busy", error.message);
  }
  return Object.assign(new Error(error.message), { code: error.code });
}

export function createParsingThreadClient(faults: Faults = NO_FAULTS): ParsingThreadClient {
  let thread: ParsingThread | undefined;
  const sessions = new Map<string, Pending>();

  const finish = (id: string, outcome: { parsed: Parsed } | { error: Error }) => {
    const pending = sessions.get(id);
    if (!pending) return;
    sessions.delete(id);
    if ("parsed" in outcome) {
      pending.settle.resolve(outcome.parsed);
    } else {
      pending.failure = outcome.error;
      pending.settle.reject(outcome.error);
      pending.failed.abort(outcome.error);
    }
    pending.room?.();
    pending.aborted?.();
  };

  function started(): ParsingThread {
    if (thread) return thread;
    // The thread holds one batch in the making per upload: at most BATCH_TEXT_LIMIT of JSON
    // and one row of MAX_ROW_BYTES, so a few megabytes however wide the rows; the heap has
    // room for many such uploads at once, and refuses the one that would take half of it
    // (parsing-thread.ts). These limits hold only when the process runs without V8 heap flags
    // (npm start, the tests): V8's flags are process-wide and win, so node-options.ts's bound
    // the thread too. A thread that fails anyway fails the uploads in hand, not the process;
    // the next upload starts another.
    const created = new ParsingThread(THREAD_URL, {
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 },
    });
    created.unref();
    created.on("message", (message: FromThread) => {
      const pending = sessions.get(message.id);
      if (!pending) return;
      if (message.op === "parsed") {
        pending.ahead--;
        pending.room?.();
      } else if (message.op === "aborted") {
        sessions.delete(message.id);
        pending.aborted?.();
      } else if (message.op === "done") {
        finish(message.id, { parsed: message.parsed });
      } else {
        finish(message.id, { error: errorOf(message.error) });
      }
    });
    // Only the uploads this thread held fail; the next upload opens on a new thread.
    const lost = (reason: string) => {
      if (thread !== created) return;
      thread = undefined;
      const error = new AppError(
        "Interrupted",
        "the api's parsing thread stopped while it held this upload; send the file again",
        { cause: new Error(reason) },
      );
      for (const id of [...sessions.keys()]) finish(id, { error });
    };
    created.on("error", (err) => lost(err.message));
    created.on("exit", (code) => lost(`exit code ${code}`));
    thread = created;
    return created;
  }

  return {
    open({ id, path, batchSize, csv, target }) {
      const parsing = started();
      let settle!: Pending["settle"];
      const done = new Promise<Parsed>((resolve, reject) => {
        settle = { resolve, reject };
      });
      // The caller learns of a failure from push or end; this one must not go unhandled.
      done.catch(() => undefined);
      const pending: Pending = { ahead: 0, settle, failed: new AbortController() };
      sessions.set(id, pending);
      parsing.postMessage({ op: "open", id, path, batchSize, csv, target } satisfies ToThread);
      if (faults.reached("parsing-thread"))
        parsing.postMessage({ op: "crash", id } satisfies ToThread);
      return {
        async push(chunk) {
          if (pending.failure) throw pending.failure;
          pending.ahead++;
          // A copy would leave the chunk itself to the main thread's GC, which runs far less often
          // than the thread's: chunks piled up there (docs/capacity.md, Memory).
          const memory = chunk.buffer;
          const whole =
            memory instanceof ArrayBuffer &&
            chunk.byteOffset === 0 &&
            chunk.byteLength === memory.byteLength;
          parsing.postMessage({ op: "chunk", id, chunk } satisfies ToThread, whole ? [memory] : []);
          while (pending.ahead >= CHUNKS_AHEAD && !pending.failure && sessions.has(id)) {
            await new Promise<void>((resolve) => {
              pending.room = resolve;
            });
          }
          if (pending.failure) throw pending.failure;
        },
        end() {
          if (sessions.has(id)) parsing.postMessage({ op: "end", id } satisfies ToThread);
          return done;
        },
        abort() {
          if (!sessions.has(id)) return Promise.resolve();
          pending.failure ??= new Error("aborted");
          const gone = new Promise<void>((resolve) => {
            pending.aborted = resolve;
          });
          parsing.postMessage({ op: "abort", id } satisfies ToThread);
          return gone;
        },
        failed: pending.failed.signal,
      };
    },
    async close() {
      const closing = thread;
      thread = undefined;
      for (const id of [...sessions.keys()]) {
        finish(id, { error: new Error("the api is stopping") });
      }
      await closing?.terminate();
    },
  };
}
