// The V8 heap limits each program runs with, wherever it is launched (npm scripts, the
// image, the chart, the benchmark). A program's live memory is bounded by design (batches in
// flight, not file sizes), but left alone V8 lets a busy heap grow far beyond what it holds:
// a smaller young generation and a ceiling on the old one keep the footprint near the live set.
// A floor for the old one too: the api and the worker keep a small live heap (about 25 MB)
// while buffers of megabytes pass through them, and from so small a heap V8 grows its old
// generation only a few megabytes before each full collection: the worker ran one every 14
// batches (docs/capacity.md, Memory).
// V8's flags are process-wide: they bound the api's parsing thread's heap as well.
// The one place they are set: `npm run docs:config` writes them into the npm start scripts,
// the Dockerfile's CMD and the chart's <program>.nodeOptions; the benchmark, the fault suite
// and the tests' programs import them.
export const NODE_OPTIONS = {
  api: "--max-semi-space-size=2 --max-old-space-size=96 --initial-old-space-size=48",
  worker: "--max-semi-space-size=8 --max-old-space-size=200 --initial-old-space-size=96",
  controller: "--max-semi-space-size=2 --max-old-space-size=96",
} as const;
