// An accepted upload's stored batches survive a power loss: the file reaches the disk before it
// is renamed into place, and the rename reaches it before the upload is accepted. Without both,
// a machine that loses power may come back with the renamed file empty or short, and the
// upload's batches lost. What reaches the disk is seen as the system calls the api makes, traced
// by strace (Debian's package) around a real intake on its parsing thread.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

const STRACE = "/usr/bin/strace";
const api = (file: string) =>
  JSON.stringify(pathToFileURL(join(import.meta.dirname, "..", "src", "api", "intake", file)).href);

let dir: string | undefined;
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a stored upload is synced to the disk before its rename, and its folder after", async () => {
  dir = await mkdtemp(join(tmpdir(), "sluice-spool-sync-"));
  const uploads = join(dir, "uploads");
  const trace = join(dir, "trace.txt");
  const id = randomUUID();
  // One upload received as the api receives it, by its parsing thread, then the process ends.
  const script = `
    import { createParsingThreadClient } from ${api("parsing-thread-client.ts")};
    import { prepareUploadDir, receiveUpload } from ${api("upload-intake.ts")};
    const [uploadDir, id] = process.argv.slice(1);
    await prepareUploadDir(uploadDir);
    const parser = createParsingThreadClient();
    const body = [Buffer.from("id,name\\n1,one\\n2,two\\n3,three\\n")];
    const csv = { maxColumns: 10, maxFieldBytes: 1000, maxRowBytes: 10000 };
    const intake = await receiveUpload(body, { uploadDir, id, maxBytes: 1e6, batchSize: 2, csv, parser });
    await parser.close();
    console.log(JSON.stringify({ batches: intake.batches, path: intake.path }));
  `;
  const { stdout } = await promisify(execFile)(
    STRACE,
    [
      "-f",
      "-y",
      "-qq",
      "-o",
      trace,
      "-e",
      "trace=fsync,fdatasync,rename,renameat,renameat2",
      process.execPath,
      "--input-type=module",
      "-e",
      script,
      uploads,
      id,
    ],
    { maxBuffer: 1 << 20 },
  ).catch((err: Error) => {
    throw new Error(
      `${STRACE} could not trace the intake (apt-get install -y strace): ${err.message}`,
    );
  });
  const stored = join(uploads, `${id}.batches`);
  assert.deepEqual(JSON.parse(stdout), { batches: 2, path: stored });

  const calls = (await readFile(trace, "utf8"))
    .split("\n")
    .map((line) => line.replace(/^\d+\s+/, ""))
    .filter((line) => / = 0$/.test(line));
  const renamed = calls.findIndex(
    (line) =>
      /^rename/.test(line) && line.includes(`"${stored}.part"`) && line.includes(`"${stored}"`),
  );
  assert.ok(renamed >= 0, `the stored file is renamed into place:\n${calls.join("\n")}`);
  const synced = (path: string) => (line: string) =>
    /^f(data)?sync\(\d+</.test(line) && line.includes(`<${path}>`);
  assert.ok(
    calls.slice(0, renamed).some(synced(`${stored}.part`)),
    `the file is synced before its rename:\n${calls.join("\n")}`,
  );
  assert.ok(
    calls.slice(renamed + 1).some(synced(uploads)),
    `the folder is synced after the rename:\n${calls.join("\n")}`,
  );
});
