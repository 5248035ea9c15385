// The `sluice` command line (bin/sluice, also kubectl-sluice) against the real api, worker and
// services: an upload lands its rows and exits 0; a bad file exits 1 with the reason; --json
// output parses; cancel, status, list and the row errors listing.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { kubectlPath } from "../scripts/helm.ts";
import { type InProcess, ROOT, startInProcess, type TestEnv, testEnv } from "./support/stack.ts";

const KEY = "acme-3c9d1e7f5a2b";
const BIN = join(ROOT, "bin", "sluice");

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sluice-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Run = { code: number | null; stdout: string; stderr: string };

/** Runs the command with only PATH and what is given in its environment. */
function sluice(args: string[], env: Record<string, string>, command = BIN): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env: { PATH: process.env.PATH ?? "", ...env }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function csvFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function peopleCsv(rows: number): string {
  const lines = ["id,name,zip"];
  for (let i = 1; i <= rows; i++)
    lines.push(`${i},person ${i},0${String(i % 10_000).padStart(4, "0")}`);
  return `${lines.join("\n")}\n`;
}

describe("with a worker", () => {
  let env: TestEnv;
  let api: InProcess;
  let vars: Record<string, string>;
  before(async () => {
    env = await testEnv({ API_KEYS: `acme:${KEY}` });
    api = await startInProcess(env);
    vars = { SLUICE_URL: api.url, SLUICE_API_KEY: KEY };
  });
  after(async () => {
    await api?.stop();
    await env?.cleanup();
  });

  test("upload --target lands typed rows in the target's table", async () => {
    const defined = await fetch(`${api.url}/targets/people`, {
      method: "PUT",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        table: "people",
        columns: [
          { name: "id", type: "integer" },
          { name: "name", type: "text" },
          { name: "zip", type: "text" },
        ],
      }),
    });
    assert.equal(defined.status, 201, await defined.text());
    const file = await csvFile("typed.csv", peopleCsv(3));
    const run = await sluice(["upload", "--json", "--target", "people", file], vars);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).rowsLanded, 3);
    const { rows } = await env.sql.query("select id, zip from tenant_acme.people order by id");
    assert.deepEqual(rows, [
      { id: 1, zip: "00001" },
      { id: 2, zip: "00002" },
      { id: 3, zip: "00003" },
    ]);
  });

  test("upload lands every row in PostgreSQL and exits 0; --json prints the upload", async () => {
    const file = await csvFile("people.csv", peopleCsv(5000));
    const run = await sluice(["upload", "--json", file], vars);
    assert.equal(run.code, 0, run.stderr);
    const upload = JSON.parse(run.stdout);
    assert.equal(upload.status, "completed");
    assert.equal(upload.filename, "people.csv");
    assert.equal(upload.rowsLanded, 5000);
    const { rows } = await env.sql.query(
      "select count(*)::int as n, min(data->>'zip') as zip from upload_rows where upload_id = $1",
      [upload.id],
    );
    // Leading zeros survive: the zip of row 1 is 00001.
    assert.deepEqual(rows[0], { n: 5000, zip: "00001" });

    const status = await sluice(["status", "--json", upload.id], vars);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).rowsLanded, 5000);
    const human = await sluice(["status", upload.id], vars);
    assert.match(human.stdout, /^status\s+completed$/m);
    const list = await sluice(["list", "--json", "--limit", "1"], vars);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).items.map((u: { id: string }) => u.id),
      [upload.id],
    );
  });

  test("kubectl sluice uploads and lists through kubectl, as its plugin", async () => {
    const { PATH } = await pluginOnPath();
    const file = await csvFile("plugin.csv", peopleCsv(1200));
    const kubectl = (args: string[]) =>
      sluice(["sluice", ...args], { ...vars, PATH, HOME: dir }, kubectlPath());
    const run = await kubectl(["upload", "--json", file]);
    assert.equal(run.code, 0, run.stderr);
    const upload = JSON.parse(run.stdout);
    assert.deepEqual([upload.status, upload.rowsLanded], ["completed", 1200]);
    const list = await kubectl(["list", "--json", "--limit", "1"]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).items.map((u: { id: string }) => u.id),
      [upload.id],
    );
  });

  test("upload without --json says where the rows went, on a pipe as on a terminal", async () => {
    const file = await csvFile("plain.csv", peopleCsv(1500));
    const run = await sluice(["upload", file], vars);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /: completed, 1,500 of 1,500 rows landed\n$/);
    assert.match(run.stderr, /: stored, 1,500 rows, 0 row errors; landing\n$/);
  });

  test("on a terminal, upload draws the bytes sent, then the rows landed", async (t) => {
    // script(1) gives the command a terminal, as a person's shell would.
    if (spawnSync("script", ["--version"]).error) return t.skip("no script(1) on this machine");
    const file = await csvFile("terminal.csv", peopleCsv(3000));
    const run = await sluice(["-qec", `${BIN} upload ${file}`, "/dev/null"], vars, "script");
    assert.equal(run.code, 0, run.stdout);
    const screen = run.stdout.replaceAll("\r", "\n");
    const size = (await stat(file)).size;
    assert.match(screen, new RegExp(`sending \\[█+\\] 100% ${(size / 1e6).toFixed(1)} MB of`));
    assert.match(screen, /landing \[█+\] 100% 3000 of 3000 rows \| completed/);
    assert.match(screen, /: completed, 3,000 of 3,000 rows landed/);
  });

  test("a bad file exits 1 with the reason", async () => {
    const file = await csvFile("header-only.csv", "id,name\n");
    const run = await sluice(["upload", file], vars);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /NoDataRows: The file has a header but no data rows\. \(HTTP 422\)/);
    const json = await sluice(["upload", "--json", file], vars);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).error.code, "NoDataRows");
  });

  test("errors lists the rejected rows, as CSV or as JSON", async () => {
    const file = await csvFile(
      "row-errors.csv",
      'id,name\n1,ada\n2\n3,"grace, ""amazing""",x\n4,bob\n',
    );
    const run = await sluice(["upload", "--json", file], vars);
    assert.equal(run.code, 0, run.stderr);
    const upload = JSON.parse(run.stdout);
    assert.deepEqual([upload.rowsLanded, upload.rowErrors], [2, 2]);
    const csv = await sluice(["errors", upload.id], vars);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trimEnd().split("\n");
    assert.equal(lines[0], "row,line,code,message");
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(",").slice(0, 3).join(",")),
      ["2,3,FieldCount", "3,4,FieldCount"],
    );
    const json = await sluice(["errors", "--json", upload.id], vars);
    assert.equal(json.code, 0, json.stderr);
    const errors = JSON.parse(json.stdout);
    assert.deepEqual(
      errors.map((e: { row: number; line: number; code: string }) => [e.row, e.line, e.code]),
      [
        [2, 3, "FieldCount"],
        [3, 4, "FieldCount"],
      ],
    );
    assert.equal(typeof errors[0].message, "string");
  });

  test("a wrong key, an unknown id, a finished upload to cancel: exit 1 with the api's reason", async () => {
    const wrong = await sluice(["list"], { ...vars, SLUICE_API_KEY: "not-a-key" });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /Unauthorized: the API key is not valid \(HTTP 401\)/);
    const unknown = await sluice(["status", "0b5c2f9e-1d3a-4c8e-9f70-2a6b8d4e1c3f"], vars);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /NotFound: no upload 0b5c2f9e/);
    const done = JSON.parse((await sluice(["list", "--json", "--limit", "1"], vars)).stdout);
    const cancel = await sluice(["cancel", done.items[0].id], vars);
    assert.equal(cancel.code, 1);
    assert.match(cancel.stderr, /Conflict: .* is completed and cannot be cancelled \(HTTP 409\)/);
    const usage = await sluice(["upload"], vars);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /upload needs one FILE/);
  });
});

test("a SLUICE_URL that would send the key elsewhere, or is no URL, exits 2 naming it", async () => {
  for (const [url, reason] of [
    ["http://someone:secret@localhost:1", /SLUICE_URL must not hold credentials/],
    ["ftp://localhost:1", /SLUICE_URL must be an http or https URL, not ftp:/],
    ["localhost 1", /SLUICE_URL is not a URL/],
  ] as const) {
    const run = await sluice(["list"], { SLUICE_URL: url, SLUICE_API_KEY: KEY });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, reason);
  }
});

describe("without a worker", () => {
  let env: TestEnv;
  let api: InProcess;
  before(async () => {
    env = await testEnv({ API_KEYS: `acme:${KEY}` });
    // Nothing lands: the upload waits for its rows until it is cancelled.
    api = await startInProcess(env, { worker: false });
  });
  after(async () => {
    await api?.stop();
    await env?.cleanup();
  });

  test("cancel ends an upload being watched, which then exits 1 saying so", async () => {
    const vars = { SLUICE_URL: api.url, SLUICE_API_KEY: KEY };
    const file = await csvFile("waiting.csv", peopleCsv(2000));
    const watching: ChildProcess = spawn(BIN, ["upload", file], {
      env: { PATH: process.env.PATH ?? "", ...vars },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    watching.stdout?.on("data", (chunk) => {
      stdout += chunk;
    });
    const stored = new Promise<string>((resolve) => {
      watching.stderr?.on("data", (chunk) => {
        stderr += chunk;
        const id = /^([0-9a-f-]{36}): stored/m.exec(stderr)?.[1];
        if (id) resolve(id);
      });
    });
    const exited = once(watching, "close");
    const id = await stored;

    const cancel = await sluice(["cancel", "--json", id], vars);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(JSON.parse(cancel.stdout).status, "cancelled");
    const [code] = await exited;
    assert.equal(code, 1);
    assert.match(stdout, new RegExp(`^${id}: cancelled, 0 of 2,000 rows landed\\n$`));
    assert.match(stderr, new RegExp(`sluice: upload ${id} is cancelled`));
  });
});

/** A PATH on which kubectl finds the command as its plugin, as `npm link` installs it. */
async function pluginOnPath(): Promise<{ pathDir: string; PATH: string }> {
  const pathDir = await mkdtemp(join(dir, "path-"));
  await symlink(BIN, join(pathDir, "kubectl-sluice"));
  return { pathDir, PATH: `${pathDir}:${process.env.PATH ?? ""}` };
}

test("package.json names bin/sluice as sluice and kubectl-sluice; kubectl finds the plugin", async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
  assert.deepEqual(pkg.bin, { sluice: "bin/sluice", "kubectl-sluice": "bin/sluice" });
  const { pathDir, PATH } = await pluginOnPath();
  const kubectl = kubectlPath();
  const plugins = await sluice(["plugin", "list"], { PATH, HOME: dir }, kubectl);
  assert.match(plugins.stdout, new RegExp(`${pathDir}/kubectl-sluice`));
  const help = await sluice(["sluice", "--help"], { PATH, HOME: dir }, kubectl);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: sluice <command>/);
});
