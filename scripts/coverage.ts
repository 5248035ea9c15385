// One coverage summary of src/ over every Node process that wrote V8 coverage to coverage/v8
// (the test runners, their test files and the programs they start), and over the programs
// the image and cluster checks ran in containers, which wrote theirs to coverage/containers
// (test/support/container-coverage.ts). Those ran the image's /app: its dist/ is this
// checkout's `npm run build`, byte for byte, whose source maps lead back to src/.
// Usage: npm run coverage
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const v8Dir = join(root, "coverage", "v8");
const containersDir = join(root, "coverage", "containers");
const IMAGE_ROOT = "file:///app/";
const here = `${pathToFileURL(root).href}/`;

/** A V8 coverage file of Sluice's own scripts only, the image's paths made this checkout's. */
function mapped(file: string): string {
  const coverage = JSON.parse(readFileSync(file, "utf8"));
  coverage.result = coverage.result
    .filter(
      (script: { url: string }) =>
        script.url.startsWith(`${IMAGE_ROOT}dist/`) || script.url.startsWith(`${IMAGE_ROOT}src/`),
    )
    .map((script: { url: string }) => ({
      ...script,
      url: here + script.url.slice(IMAGE_ROOT.length),
    }));
  return JSON.stringify(coverage);
}

let containerFiles = 0;
const unreadable: string[] = [];
if (existsSync(containersDir)) {
  mkdirSync(v8Dir, { recursive: true });
  const files = readdirSync(containersDir, { recursive: true, encoding: "utf8" });
  for (const file of files.filter((name) => name.endsWith(".json"))) {
    try {
      const copy = join(v8Dir, `container-${file.replaceAll("/", "-")}`);
      writeFileSync(copy, mapped(join(containersDir, file)));
      containerFiles++;
    } catch (err) {
      // Cut short: a program killed as it wrote (the cluster taken down under it).
      if (!(err instanceof SyntaxError)) throw err;
      unreadable.push(file);
    }
  }
}
console.log(
  `${containerFiles} coverage file(s) from containers, mapped onto ${root}` +
    (unreadable.length > 0
      ? `; ${unreadable.length} unreadable, left out: ${unreadable.join(", ")}`
      : ""),
);

// Filtered after the source maps are applied: the image's programs ran dist/, not src/.
const c8 = spawnSync(
  join(root, "node_modules", ".bin", "c8"),
  [
    ...["report", "--temp-directory", v8Dir, "--reports-dir", join(root, "coverage")],
    ...["--reporter=text-summary", "--all", "--exclude-after-remap"],
    ...["--include", "src/**", "--exclude", "src/**/*.test.ts"],
  ],
  { cwd: root, stdio: "inherit" },
);
process.exit(c8.status ?? 1);
