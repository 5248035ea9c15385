// Writes a single-layer image in the `docker save` layout, which `ctr images import` reads:
// how the cluster gets images with no registry to pull from.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";

type Entry = Readonly<{ name: string; data: Buffer; mode: number }>;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** A ustar archive of regular files (and the directories they need). */
export function tar(entries: readonly Entry[]): Buffer {
  const blocks: Buffer[] = [];
  const header = (name: string, size: number, mode: number, type: "0" | "5") => {
    const block = Buffer.alloc(512);
    block.write(name, 0, 100);
    block.write(octal(mode, 8), 100);
    block.write(octal(0, 8), 108);
    block.write(octal(0, 8), 116);
    block.write(octal(size, 12), 124);
    block.write(octal(0, 12), 136);
    block.write("        ", 148);
    block.write(type, 156);
    block.write("ustar\0", 257);
    block.write("00", 263);
    let sum = 0;
    for (const byte of block) sum += byte;
    block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    return block;
  };
  const dirs = new Set<string>();
  for (const entry of entries) {
    const parts = entry.name.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `${parts.slice(0, i).join("/")}/`;
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      blocks.push(header(dir, 0, 0o755, "5"));
    }
    blocks.push(header(entry.name, entry.data.length, entry.mode, "0"), entry.data);
    const pad = (512 - (entry.data.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** An image of the given files whose entrypoint is `entrypoint`, saved to `file`. */
export function writeImageArchive(
  file: string,
  reference: string,
  files: readonly Entry[],
  entrypoint: readonly string[],
): void {
  const layer = tar(files);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Entrypoint: entrypoint, User: "65535:65535" },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha256(layer)}`] },
    }),
  );
  const configName = `${sha256(config)}.json`;
  const manifest = Buffer.from(
    JSON.stringify([{ Config: configName, RepoTags: [reference], Layers: ["layer.tar"] }]),
  );
  writeFileSync(
    file,
    tar([
      { name: "manifest.json", data: manifest, mode: 0o644 },
      { name: configName, data: config, mode: 0o644 },
      { name: "layer.tar", data: layer, mode: 0o644 },
    ]),
  );
}
