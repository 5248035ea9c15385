// The two progress bars of `sluice upload` on a terminal: bytes sent, then rows landed.
import cliProgress from "cli-progress";
import type { ProgressEvent } from "../api/progress/progress-event.ts";
import type { Upload } from "./upload.ts";

const megabytes = (bytes: number) => `${(bytes / 1_000_000).toFixed(1)} MB`;

export type UploadBars = Readonly<{
  sending(sent: number, total: number): void;
  accepted(upload: Upload): void;
  progress(event: ProgressEvent): void;
  stop(): void;
}>;

export function createUploadBars(stream: NodeJS.WritableStream): UploadBars {
  const options = (format: string): cliProgress.Options => ({
    format,
    stream: stream as NodeJS.WritableStream,
    hideCursor: true,
    barsize: 30,
    etaBuffer: 50,
  });
  const bytes = new cliProgress.SingleBar(
    options("sending [{bar}] {percentage}% {sentText} of {totalText} | {eta_formatted} left"),
    cliProgress.Presets.shades_classic,
  );
  const rows = new cliProgress.SingleBar(
    options("landing [{bar}] {percentage}% {value} of {total} rows | {status}{stalled}"),
    cliProgress.Presets.shades_classic,
  );
  let state: "idle" | "sending" | "landing" | "stopped" = "idle";

  return {
    sending(sent, total) {
      const payload = { sentText: megabytes(sent), totalText: megabytes(total) };
      if (state === "idle") {
        bytes.start(total, sent, payload);
        state = "sending";
      } else if (state === "sending") {
        bytes.update(sent, payload);
      }
    },
    accepted(upload) {
      if (state === "sending") bytes.stop();
      // The rows that will land: the rejected ones never do.
      const total = Math.max((upload.rows ?? 0) - upload.rowErrors, 0);
      rows.start(total, upload.rowsLanded, { status: upload.status, stalled: "" });
      state = "landing";
    },
    progress(event) {
      if (state !== "landing") return;
      rows.update(event.rowsLanded, {
        status: event.status,
        stalled: event.stalled ? " (stalled)" : "",
      });
    },
    stop() {
      if (state === "sending") bytes.stop();
      if (state === "landing") rows.stop();
      state = "stopped";
    },
  };
}
