// Runs Sluice's images with Docker as the Helm chart runs its pods, against the machine's
// services on the host network, and keeps what each container prints.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { DOCKER } from "../../scripts/image.ts";
import { COVERAGE_IN_CONTAINER, containerCoverageDir } from "../support/container-coverage.ts";
import { followOutput } from "../support/program.ts";

const run = promisify(execFile);

/** The chart's user and privileges, in debug mode too (charts/sluice/templates/_helpers.tpl). */
export const CHART_USER = [
  "--user",
  "1000:1000",
  "--cap-drop",
  "ALL",
  "--security-opt",
  "no-new-privileges",
];

/** The chart's securityContext and volumes (charts/sluice/templates/_helpers.tpl, api.yaml). */
export const CHART_SECURITY = [
  "--read-only",
  ...CHART_USER,
  // emptyDir volumes, writable by fsGroup 1000.
  "--tmpfs",
  "/tmp:rw,size=1g,uid=1000,gid=1000,mode=0770",
];

export type Container = Readonly<{
  name: string;
  /** Every line printed so far on stdout and stderr, in the order printed. */
  lines: string[];
  /** Resolves with the first line that satisfies `match`, waiting for it if needed. */
  line(what: string, match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** The main process's id inside the container and its command line. */
  pid1(): Promise<string>;
  /** Runs a command in the container, as its user; resolves with what it prints. */
  exec(command: string[]): Promise<string>;
  /** Sends SIGTERM to the container's PID 1 and resolves with its exit code. */
  terminate(): Promise<number>;
  /** Stops the container (SIGTERM, then SIGKILL after Docker's 10 s) and removes it. */
  remove(): Promise<void>;
}>;

/** `docker run` in the foreground, on the host network, with the given options and env. */
export async function startContainer(
  image: string,
  options: string[],
  env: Record<string, string>,
  command: string[],
): Promise<Container> {
  const name = `sluice-image-test-${randomUUID().slice(0, 8)}`;
  const coverage = containerCoverageDir(name);
  const coverageArgs = coverage ? ["--volume", `${coverage}:${COVERAGE_IN_CONTAINER}`] : [];
  const envArgs = Object.entries({
    ...env,
    ...(coverage && { NODE_V8_COVERAGE: COVERAGE_IN_CONTAINER }),
  }).flatMap(([key, value]) => ["--env", `${key}=${value}`]);
  const child: ChildProcess = spawn(
    DOCKER,
    [
      ...["run", "--name", name, "--network", "host", ...options, ...coverageArgs],
      ...[...envArgs, image, ...command],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const output = followOutput(child, name);
  return {
    name,
    lines: output.lines,
    line: (what, match, timeoutMs = 60_000) => output.line(what, match, { timeoutMs }),
    async pid1() {
      const { stdout } = await run(DOCKER, ["exec", name, "cat", "/proc/1/cmdline"]);
      return stdout.replaceAll("\0", " ").trim();
    },
    async exec(command) {
      return (await run(DOCKER, ["exec", name, ...command])).stdout;
    },
    async terminate() {
      await run(DOCKER, ["kill", "--signal", "SIGTERM", name]);
      const { stdout } = await run(DOCKER, ["wait", name]);
      await output.exit;
      return Number(stdout.trim());
    },
    async remove() {
      // Stopped first, with SIGTERM, so that a program still running writes its coverage.
      await run(DOCKER, ["stop", name]).catch(() => undefined);
      await run(DOCKER, ["rm", "--force", name]).catch(() => undefined);
    },
  };
}

/** The JSON log lines of a container, parsed; other lines are left out. */
export function logEntries(container: Container): Array<Record<string, unknown>> {
  return container.lines.flatMap((line) => {
    try {
      const parsed = JSON.parse(line);
      return parsed && typeof parsed === "object" ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

/** The size of an image, in bytes, as `docker image inspect` gives it. */
export async function imageSize(image: string): Promise<number> {
  const { stdout } = await run(DOCKER, ["image", "inspect", "-f", "{{.Size}}", image]);
  return Number(stdout.trim());
}

/** The command an image runs when given none. */
export async function imageCommand(image: string): Promise<string[]> {
  const { stdout } = await run(DOCKER, ["image", "inspect", "-f", "{{json .Config.Cmd}}", image]);
  return JSON.parse(stdout);
}
