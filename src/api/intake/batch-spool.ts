// An accepted upload waits in UPLOAD_DIR as its batches, cut and encoded while the body
// arrived, so that publishing only reads them back: the file is parsed once, not twice.
// Each batch is a frame, a fixed header then the batch's JSON:
//
//   seq (u32) | rows (u32) | rowErrors (u32) | length (u32) | JSON (length bytes)
//
// A restarted api resumes publishing by skipping frames, reading only their headers.
import { open } from "node:fs/promises";
import { createBatchEncoder } from "./batch-encoder.ts";
import type { CsvSink } from "./csv/csv-reader.ts";

export type SpooledBatch = { seq: number; rows: number; rowErrors: number; body: Buffer };

const HEADER_BYTES = 16;

/**
 * A batch closes before BATCH_SIZE records once its JSON reaches this many UTF-16 units (1 MiB
 * of ASCII): wide rows make smaller batches, so that a batch in the making, a message and
 * what a worker holds stay bounded whatever the width of the rows.
 */
export const BATCH_TEXT_LIMIT = 1 << 20;

/** A batch as the bytes of its frame: header, then body. */
export function frameOf(batch: SpooledBatch): [Buffer, Buffer] {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(batch.seq, 0);
  header.writeUInt32BE(batch.rows, 4);
  header.writeUInt32BE(batch.rowErrors, 8);
  header.writeUInt32BE(batch.body.length, 12);
  return [header, batch.body];
}

/**
 * A spool file that cannot be read back whole: cut short (a disk that filled, a copy or a
 * crash before it reached the disk) or overwritten. Reading it again would find the same.
 */
export class SpoolDamagedError extends Error {
  /** What is wrong with the file, without its path: "ends inside batch 4". */
  readonly what: string;
  constructor(path: string, what: string) {
    super(`spool ${path} ${what}`);
    this.what = what;
  }
}

/**
 * The batches of a spool file after `afterSeq`, in order, each body read into
 * `allocate(length)`; a file whose frames are not whole and numbered from 1 throws
 * SpoolDamagedError, before any byte of the frame at fault is read.
 */
export async function* readSpool(
  path: string,
  afterSeq: number,
  allocate: (length: number) => Buffer = Buffer.allocUnsafe,
): AsyncGenerator<SpooledBatch> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    for (let at = 0, expected = 1; ; expected++) {
      const { bytesRead } = await file.read(header, 0, HEADER_BYTES, at);
      if (bytesRead === 0) return;
      if (bytesRead < HEADER_BYTES) {
        throw new SpoolDamagedError(path, `ends inside the header of batch ${expected}`);
      }
      const seq = header.readUInt32BE(0);
      const length = header.readUInt32BE(12);
      if (seq !== expected) {
        throw new SpoolDamagedError(path, `holds batch ${seq} where batch ${expected} belongs`);
      }
      at += HEADER_BYTES;
      // Checked before the body is allocated: a damaged length may be up to 4 GiB.
      if (at + length > size) throw new SpoolDamagedError(path, `ends inside batch ${seq}`);
      if (seq > afterSeq) {
        const body = allocate(length);
        const read = await file.read(body, 0, length, at);
        if (read.bytesRead < length) throw new SpoolDamagedError(path, `ends inside batch ${seq}`);
        yield { seq, rows: header.readUInt32BE(4), rowErrors: header.readUInt32BE(8), body };
      }
      at += length;
    }
  } finally {
    await file.close();
  }
}

export type BatchCutter = Readonly<{
  /** Receives the reader's records. */
  sink: CsvSink;
  /** The batches completed since the last call. */
  take(): SpooledBatch[];
  /** Closes the last batch; call after the reader's end(). */
  end(): SpooledBatch[];
  /** Batches cut so far. */
  count(): number;
  /** UTF-16 units of JSON held for the batch in the making. */
  size(): number;
}>;

/**
 * Groups records into batches of `batchSize` records, rejected records included, or fewer
 * when their JSON reaches BATCH_TEXT_LIMIT.
 */
export function createBatchCutter(uploadId: string, batchSize: number): BatchCutter {
  let encoder: ReturnType<typeof createBatchEncoder> | undefined;
  let seq = 0;
  let records = 0;
  let open = false;
  let done: SpooledBatch[] = [];

  const close = () => {
    if (!encoder || !open) return;
    open = false;
    done.push({ seq, rows: encoder.rows(), rowErrors: encoder.errors(), body: encoder.finish() });
  };
  const enter = (current: ReturnType<typeof createBatchEncoder>) => {
    if (open && records < batchSize && current.size() < BATCH_TEXT_LIMIT) {
      records++;
      return;
    }
    close();
    seq++;
    records = 1;
    open = true;
    current.start(seq);
  };
  const take = () => {
    const taken = done;
    done = [];
    return taken;
  };

  return {
    sink: {
      header: (header) => {
        encoder = createBatchEncoder(uploadId, header.columns);
      },
      row: (row, values, line) => {
        if (!encoder) return;
        enter(encoder);
        encoder.row(row, values, line);
      },
      rowError: (error) => {
        if (!encoder) return;
        enter(encoder);
        encoder.error(error);
      },
    },
    take,
    end() {
      close();
      return take();
    },
    count: () => seq,
    size: () => (open && encoder ? encoder.size() : 0),
  };
}
