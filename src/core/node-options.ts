// The V8 heap limits each program runs with, wherever it is launched (npm scripts, the
// image, the chart, the benchmark). A program's live memory is bounded by design (batches in
// flight, not file sizes), but left alone V8 lets a busy heap grow far beyond what it holds:
// a smaller young generation and a ceiling on the old one keep the footprint near the live set.
// The api's parsing thread is an isolate of its own, with limits set where it starts
// (intake-parser.ts).
export const NODE_OPTIONS = {
  api: "--max-semi-space-size=2 --max-old-space-size=96",
  worker: "--max-semi-space-size=8 --max-old-space-size=200",
  controller: "--max-semi-space-size=2 --max-old-space-size=96",
} as const;
