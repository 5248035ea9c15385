// Schemathesis, with every check, against the api and a worker on the real services: no
// answer is a 500, and every answer is as src/api/http/openapi.json describes it. Schemathesis
// (its version and what it installs pinned in requirements.txt beside this file) is
// installed on first use into a virtual environment outside the repository.
// npm run test:schemathesis; extra options for `schemathesis run` in SCHEMATHESIS_ARGS.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ensureBucket } from "../../src/core/storage/s3.ts";
import { type InProcess, ROOT, startInProcess, type TestEnv, testEnv } from "../support/stack.ts";

const HERE = join(ROOT, "test", "schemathesis");

/** The venv's schemathesis, installed from requirements.txt unless a venv of it is there. */
function schemathesis(): string {
  const requirements = readFileSync(join(HERE, "requirements.txt"));
  const digest = createHash("sha256").update(requirements).digest("hex").slice(0, 12);
  const venv = join(homedir(), ".cache", "sluice", `schemathesis-${digest}`);
  const done = join(venv, "installed");
  if (!existsSync(done)) {
    rmSync(venv, { recursive: true, force: true });
    for (const [command, args] of [
      ["python3", ["-m", "venv", venv]],
      [join(venv, "bin", "pip"), ["install", "-q", "-r", join(HERE, "requirements.txt")]],
    ] as const) {
      const run = spawnSync(command, args, { stdio: "inherit" });
      assert.equal(run.status, 0, `${command} ${args.join(" ")} failed`);
    }
    writeFileSync(done, "");
  }
  return join(venv, "bin", "schemathesis");
}

const KEY = `fuzz-${randomUUID()}`;
let env: TestEnv;
let api: InProcess;
let bin: string;
let workDir: string;
before(async () => {
  bin = schemathesis();
  workDir = await mkdtemp(join(tmpdir(), "sluice-schemathesis-"));
  env = await testEnv({ API_KEYS: `fuzz:${KEY}` });
  api = await startInProcess(env);
  await ensureBucket(env.s3, env.config.s3.bucket);
});
after(async () => {
  await api?.stop();
  await env?.cleanup();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test("schemathesis finds no server error and no answer the description does not allow", async (t) => {
  const started = Date.now();
  const extra = (process.env.SCHEMATHESIS_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(
    bin,
    [
      "--config-file",
      join(HERE, "schemathesis.toml"),
      "run",
      `${api.url}/openapi.json`,
      "--checks",
      "all",
      "--header",
      `Authorization: Bearer ${KEY}`,
      "--workers",
      "1",
      "--no-color",
      ...extra,
    ],
    // Its caches (.hypothesis, .schemathesis) go to a folder of the test's, not the checkout.
    { cwd: workDir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const [code] = await once(child, "close");
  const summary = output.slice(output.lastIndexOf("SUMMARY"));
  t.diagnostic(`schemathesis ran ${Math.round((Date.now() - started) / 1000)} s:\n${summary}`);
  assert.equal(code, 0, output);
});
