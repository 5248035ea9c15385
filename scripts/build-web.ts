// Builds the web page (web/) into dist/web: index.html naming its script and stylesheet,
// bundled by esbuild under names that carry a hash of their content, so that the api can
// let browsers keep them for good and revalidate only the page.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Writes the page into `outDir` (emptied first: old hashed files would pile up). */
export async function buildWeb(outDir = join(ROOT, "dist", "web")): Promise<string[]> {
  await rm(outDir, { recursive: true, force: true });
  const assets = join(outDir, "assets");
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ["web/app.ts", "web/app.css"],
    outdir: assets,
    entryNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    target: ["es2022"],
    minify: true,
    sourcemap: false,
    metafile: true,
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const named = (ext: string) => {
    const found = outputs.find((name) => name.startsWith("app-") && name.endsWith(ext));
    if (!found) throw new Error(`esbuild wrote no app${ext}`);
    return found;
  };
  const icon = await readFile(join(ROOT, "web", "icon.svg"));
  const iconName = `icon-${createHash("sha256").update(icon).digest("hex").slice(0, 8)}.svg`;
  await writeFile(join(assets, iconName), icon);
  outputs.push(iconName);
  const template = await readFile(join(ROOT, "web", "index.html"), "utf8");
  const page = template
    .replace("/assets/icon.svg", `/assets/${iconName}`)
    .replace("/assets/app.css", `/assets/${named(".css")}`)
    .replace("/assets/app.js", `/assets/${named(".js")}`);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, "index.html"), page);
  return ["index.html", ...outputs.map((name) => `assets/${name}`)];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const written = await buildWeb();
  console.log(`web page built: ${written.map((f) => `dist/web/${f}`).join(", ")}`);
}
