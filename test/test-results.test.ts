// npm test's reporter fails the run when a test file's results do not all reach the runner,
// rather than printing smaller totals with `fail 0`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";

const ROOT = new URL("../", import.meta.url).pathname;

async function runTests(...files: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(
    process.execPath,
    [
      "--import=./test/support/blocking-stdout.ts",
      "--test",
      "--test-force-exit",
      "--test-reporter=./test/support/coverage-reporter.ts",
      "--test-reporter-destination=stdout",
      ...files,
    ],
    // Without the variable that makes a test file's process of this one, it runs as npm test.
    {
      cwd: ROOT,
      env: { ...process.env, NODE_TEST_CONTEXT: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [code] = await once(child, "close");
  return { code, output };
}

test("a file whose results stop arriving fails the run, naming the file", async () => {
  const { code, output } = await runTests(
    "src/core/uploads/batch-layout.test.ts",
    "test/support/fixtures/lost-results.ts",
  );
  assert.equal(code, 1, output);
  assert.match(output, /ℹ fail 0/, output);
  assert.match(
    output,
    /the results of 1 test file\(s\) did not all arrive[^\n]*\n {2}test\/support\/fixtures\/lost-results\.ts: its process's own count never arrived \(0 test results did\)\n/,
    output,
  );
});

test("files whose results all arrive pass", async () => {
  const { code, output } = await runTests("src/core/uploads/batch-layout.test.ts");
  assert.equal(code, 0, output);
  assert.doesNotMatch(output, /did not all arrive/, output);
});
