// Preloaded by `npm test` (--import) into the test runner and, through it, into each test
// file's process: stdout writes block until they are out.
//
// Each test file's process reports its results to the runner over its stdout, a pipe, which
// Node writes asynchronously on POSIX. --test-force-exit ends that process with
// process.exit() as soon as its tests are done, without waiting for those writes, so on a
// busy machine the last results of a file, or all of them, were lost while the file still
// counted as passed. Blocking writes are out before the exit; the runner's own output (the
// coverage table, the summary) likewise reaches a piped CI log whole.
type WithHandle = { _handle?: { setBlocking?: (blocking: boolean) => number } };

(process.stdout as unknown as WithHandle)._handle?.setBlocking?.(true);
