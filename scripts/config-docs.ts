// Writes what repeats the configuration's one list (src/core/config-variables.ts) and the V8
// heap flags (src/core/program/node-options.ts): .env.example, README's configuration table, the
// chart's config and secret blocks in values.yaml and values.schema.json, each program's
// nodeOptions in values.yaml, the npm start scripts and the image's default command.
// Usage: npm run docs:config (writes), npm run docs:config -- --check (exits 1 on a difference).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { VARIABLES, type Variable } from "../src/core/config-variables.ts";
import { NODE_OPTIONS } from "../src/core/program/node-options.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = "src/core/config-variables.ts";
const PROGRAMS = Object.keys(NODE_OPTIONS) as (keyof typeof NODE_OPTIONS)[];
const entries = Object.entries(VARIABLES) as [string, Variable][];

export const README_START = `<!-- The table below is written by npm run docs:config from ${SOURCE}. -->`;
export const README_END = "<!-- End of the table written by npm run docs:config. -->";

function wrap(text: string, prefix: string, width = 92): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && prefix.length + line.length + 1 + word.length > width) {
      lines.push(prefix + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(prefix + line);
  return lines;
}

export function envExample(): string {
  const lines = [
    "# Sluice reads these variables at start (and a .env file beside package.json when present).",
    "# The values shown are the defaults; with none set, Sluice runs against local services.",
    `# Written by npm run docs:config from ${SOURCE}: edit there.`,
  ];
  for (const [name, v] of entries) {
    const shown = v.shown === undefined ? "" : ` Default: ${v.shown}.`;
    const sentence = `${v.meaning.charAt(0).toUpperCase()}${v.meaning.slice(1)}.${shown}`;
    lines.push("", ...wrap(sentence, "# "), `${name}=${v.default ?? ""}`);
  }
  return `${lines.join("\n")}\n`;
}

export function readmeTable(): string {
  const rows = entries.map(([name, v]) => [
    `\`${name}\``,
    v.shown ?? `\`${v.default}\``,
    v.meaning,
  ]);
  const header = ["variable", "default", "meaning"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function between(text: string, start: string, end: string, body: string, file: string): string {
  const from = text.indexOf(start);
  const to = text.indexOf(end, from);
  if (from < 0 || to < 0) throw new Error(`${file} lacks the lines ${start} ... ${end}`);
  return `${text.slice(0, from + start.length)}\n\n${body}\n\n${text.slice(to)}`;
}

function yamlScalar(value: string | number | boolean | null): string {
  if (typeof value !== "string") return String(value);
  const plain =
    /^[a-z/][\w./-]*$/i.test(value) && !/^(true|false|null|yes|no|on|off)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}

/** Replaces the lines under `key` (at indent) up to the next line indented no deeper. */
function yamlBlock(text: string, indent: string, key: string, body: string[]): string {
  const lines = text.split("\n");
  const at = lines.indexOf(`${indent}${key}:`);
  if (at < 0) throw new Error(`values.yaml has no ${indent}${key}:`);
  let end = at + 1;
  while (end < lines.length) {
    const line = lines[end] ?? "";
    if (line.trim() !== "" && !line.startsWith(`${indent}  `)) break;
    end++;
  }
  while (end > at + 1 && (lines[end - 1] ?? "").trim() === "") end--;
  lines.splice(at + 1, end - at - 1, ...body);
  return lines.join("\n");
}

export function valuesYaml(current: string): string {
  const config: string[] = [];
  const secret: string[] = [];
  for (const [name, v] of entries) {
    if (v.chart.in === "config") {
      if (v.chart.note) config.push(...wrap(v.chart.note, "  # "));
      config.push(`  ${name}: ${yamlScalar(v.chart.value)}`);
    } else if (v.chart.in === "secret") {
      if (v.chart.note) secret.push(...wrap(v.chart.note, "    # "));
      secret.push(`    ${name}: ""`);
    }
  }
  let text = yamlBlock(current, "", "config", config);
  text = yamlBlock(text, "  ", "env", secret);
  for (const program of PROGRAMS) {
    const lines = text.split("\n");
    const start = lines.indexOf(`${program}:`);
    const at = lines.findIndex((l, i) => i > start && l.startsWith("  nodeOptions: "));
    if (start < 0 || at < 0) throw new Error(`values.yaml has no ${program}.nodeOptions`);
    lines[at] = `  nodeOptions: ${JSON.stringify(NODE_OPTIONS[program])}`;
    text = lines.join("\n");
  }
  return text;
}

function chartSchema(v: Variable): Record<string, unknown> {
  if (v.chart.in !== "config") return { type: "string", description: v.meaning };
  const schema: Record<string, unknown> = { ...v.json, ...v.chart.schema };
  if (v.chart.value === null && typeof schema.type === "string")
    schema.type = [schema.type, "null"];
  return { ...schema, description: v.chart.schema?.description ?? v.meaning };
}

export function valuesSchema(current: string): string {
  const schema = JSON.parse(current);
  const of = (place: "config" | "secret") => entries.filter(([, v]) => v.chart.in === place);
  const config = of("config");
  schema.properties.config.properties = Object.fromEntries(
    config.map(([name, v]) => [name, chartSchema(v)]),
  );
  schema.properties.config.required = config
    .filter(([, v]) => v.chart.in === "config" && v.chart.required)
    .map(([name]) => name);
  schema.properties.secret.properties.env.properties = Object.fromEntries(
    of("secret").map(([name, v]) => [name, chartSchema(v)]),
  );
  const formatted = spawnSync(
    join(root, "node_modules/.bin/biome"),
    ["format", "--stdin-file-path=charts/sluice/values.schema.json"],
    { input: JSON.stringify(schema, null, 2), encoding: "utf8" },
  );
  if (formatted.status !== 0) throw new Error(`biome format failed: ${formatted.stderr}`);
  return formatted.stdout;
}

export function packageJson(current: string): string {
  let text = current;
  for (const program of PROGRAMS) {
    const script = new RegExp(`("start:${program}": "node )(?:--\\S+ )*(src/)`);
    if (!script.test(text)) throw new Error(`package.json has no start:${program} script`);
    text = text.replace(script, `$1${NODE_OPTIONS[program]} $2`);
  }
  return text;
}

export function dockerfile(current: string): string {
  const cmd = /^CMD \["node", .*"dist\/api\/main\.js"\]$/m;
  if (!cmd.test(current)) throw new Error("the Dockerfile has no CMD running dist/api/main.js");
  const args = ["node", ...NODE_OPTIONS.api.split(" "), "dist/api/main.js"];
  return current.replace(cmd, `CMD [${args.map((a) => JSON.stringify(a)).join(", ")}]`);
}

/** Each file's path and the text it should have. */
export function generated(): Map<string, string> {
  const read = (path: string) => readFileSync(join(root, path), "utf8");
  return new Map([
    [".env.example", envExample()],
    ["README.md", between(read("README.md"), README_START, README_END, readmeTable(), "README.md")],
    ["charts/sluice/values.yaml", valuesYaml(read("charts/sluice/values.yaml"))],
    ["charts/sluice/values.schema.json", valuesSchema(read("charts/sluice/values.schema.json"))],
    ["package.json", packageJson(read("package.json"))],
    ["Dockerfile", dockerfile(read("Dockerfile"))],
  ]);
}

if (import.meta.main) {
  const check = process.argv.includes("--check");
  let differ = 0;
  for (const [path, text] of generated()) {
    if (readFileSync(join(root, path), "utf8") === text) continue;
    differ++;
    if (check) console.error(`${path} differs from ${SOURCE} (run npm run docs:config)`);
    else {
      writeFileSync(join(root, path), text);
      console.log(`wrote ${path}`);
    }
  }
  if (check && differ > 0) process.exit(1);
}
