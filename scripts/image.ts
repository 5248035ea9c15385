// Builds the image without a container registry: a Node 24 base image made locally from
// Debian (debootstrap) and the node binary of the project's `node` devDependency, then the
// Dockerfile's production and dev targets with Docker's BuildKit, npm reaching its registry
// from inside the build. Runs as root; installs docker.io and debootstrap when missing.
// Usage: node scripts/image.ts base | build | stop   (npm run image:base / image:build / image:stop)
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

/** Docker's own client: the engine's BuildKit is built in, no buildx plugin needed. */
export const DOCKER = "/usr/bin/docker";
const SUITE = "bookworm";
// npm for the build and dev stages; the production stage deletes it.
const NPM_VERSION = "11.19.1";
/** The images this script makes; the chart's defaults and values-dev.yaml name the last two. */
export const IMAGES = {
  production: `sluice:${version}`,
  dev: "sluice-dev:dev",
};
const CACHE = process.env.SLUICE_IMAGE_CACHE ?? "/var/cache/sluice-image";
const RUN_DIR = "/var/run/sluice-docker";
const LOG_DIR = "/var/log/sluice-docker";
// Docker's default layout, with the containerd it would supervise itself: started here
// so that dockerd never adopts another containerd at /run/containerd/containerd.sock.
const CONTAINERD_SOCKET = "/var/run/docker/containerd/containerd.sock";

/** The Node version and binary that `npm ci` installed with the `node` devDependency. */
function nodeBinary(): { nodeVersion: string; binary: string } {
  const require = createRequire(join(root, "package.json"));
  const nodePackage = require.resolve("node/package.json");
  const { version: nodeVersion } = JSON.parse(readFileSync(nodePackage, "utf8"));
  // node/bin/node is a link to the platform package's binary, where the file really lives.
  const binary = realpathSync(join(dirname(nodePackage), "bin", "node"));
  return { nodeVersion, binary };
}

/** The base image's name: Debian suite, Node and npm versions, so an upgrade makes a new one. */
export function baseImage(): string {
  return `sluice-node:${nodeBinary().nodeVersion}-${SUITE}-npm${NPM_VERSION}`;
}

function run(command: string, args: string[], options: { input?: string } = {}): void {
  const result = spawnSync(command, args, {
    stdio: [options.input === undefined ? "inherit" : "pipe", "inherit", "inherit"],
    input: options.input,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal})`);
  }
}

const succeeds = (command: string, args: string[]) =>
  spawnSync(command, args, { stdio: "ignore" }).status === 0;
const onPath = (command: string) => succeeds("sh", ["-c", `command -v ${command}`]);

/** Installs Debian packages, without letting their scripts start any service. */
function aptInstall(packages: string[]): void {
  console.log(`installing ${packages.join(", ")} (Debian packages)`);
  run("apt-get", ["update", "-q"]);
  const policy = "/usr/sbin/policy-rc.d";
  const ours = !existsSync(policy);
  if (ours) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    run("sh", [
      "-c",
      `DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${packages.join(" ")}`,
    ]);
  } finally {
    if (ours) rmSync(policy, { force: true });
  }
}

/** Starts a detached daemon, its output in LOG_DIR, its pid in RUN_DIR. */
function startDaemon(name: string, command: string, args: string[]): number {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = openSync(join(LOG_DIR, `${name}.log`), "a");
  const child = spawn(command, args, { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.unref();
  writeFileSync(join(RUN_DIR, `${name}.pid`), String(child.pid));
  return child.pid ?? 0;
}

async function waitFor(what: string, ready: () => boolean): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (ready()) return;
    await new Promise((done) => setTimeout(done, 500));
  }
  throw new Error(`${what} did not come up; see ${LOG_DIR}`);
}

/** Makes sure a Docker engine answers on the default socket, starting one if none does. */
export async function ensureDocker(): Promise<void> {
  if (!existsSync(DOCKER) || !onPath("dockerd")) aptInstall(["docker.io"]);
  if (succeeds(DOCKER, ["info"])) return;
  mkdirSync(RUN_DIR, { recursive: true });
  mkdirSync(dirname(CONTAINERD_SOCKET), { recursive: true });
  const config = join(RUN_DIR, "containerd.toml");
  writeFileSync(
    config,
    [
      "version = 2",
      'root = "/var/lib/docker/containerd/daemon"',
      'state = "/var/run/docker/containerd/daemon"',
      // Docker needs none of the Kubernetes plugin.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${CONTAINERD_SOCKET}"`,
      "[ttrpc]",
      `  address = "${CONTAINERD_SOCKET}.ttrpc"`,
      "[debug]",
      `  address = "${dirname(CONTAINERD_SOCKET)}/containerd-debug.sock"`,
      "",
    ].join("\n"),
  );
  const containerd = startDaemon("containerd", "containerd", ["--config", config]);
  await waitFor("containerd", () => existsSync(CONTAINERD_SOCKET));
  // dockerd picks its storage driver: overlay2 where the kernel and filesystem allow it,
  // vfs (a full copy per layer, slow) otherwise. Without iptables and a bridge, containers
  // and build steps use the host's network (--network host).
  const dockerd = startDaemon("dockerd", "dockerd", [
    `--containerd=${CONTAINERD_SOCKET}`,
    "--iptables=false",
    "--bridge=none",
  ]);
  await waitFor("dockerd", () => succeeds(DOCKER, ["info"]));
  const driver = execFileSync(DOCKER, ["info", "-f", "{{.Driver}}"], { encoding: "utf8" }).trim();
  console.log(
    `started dockerd (pid ${dockerd}, storage driver ${driver}) and its containerd ` +
      `(pid ${containerd}); stop both with: npm run image:stop`,
  );
}

/** Stops the dockerd and containerd that ensureDocker started, if any. */
export async function stopDocker(): Promise<void> {
  for (const name of ["dockerd", "containerd"]) {
    const file = join(RUN_DIR, `${name}.pid`);
    if (!existsSync(file)) continue;
    const pid = Number(readFileSync(file, "utf8"));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (alive()) {
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 60 && alive(); i++) await new Promise((done) => setTimeout(done, 500));
      if (alive()) process.kill(pid, "SIGKILL");
      console.log(`stopped ${name} (pid ${pid})`);
    }
    rmSync(file);
  }
}

/** The Debian mirror apt uses on this machine, so debootstrap goes where apt may go. */
function debianMirror(): string {
  if (process.env.DEBIAN_MIRROR) return process.env.DEBIAN_MIRROR;
  const sources = "/etc/apt/sources.list.d/debian.sources";
  const text = existsSync(sources) ? readFileSync(sources, "utf8") : "";
  const uri = /^URIs:\s*(\S+\/debian)\s*$/m.exec(text)?.[1];
  return uri ?? "http://deb.debian.org/debian";
}

/** Makes the base image: Debian minbase, node, npm and the user 1000 that node:24-slim has. */
export async function ensureBase(): Promise<string> {
  await ensureDocker();
  const name = baseImage();
  if (succeeds(DOCKER, ["image", "inspect", name])) return name;
  const { nodeVersion, binary } = nodeBinary();
  const cacheDir = join(CACHE, `${SUITE}-node${nodeVersion}-npm${NPM_VERSION}`);
  const tarball = join(cacheDir, "rootfs.tar");
  if (!existsSync(tarball)) {
    if (!onPath("debootstrap")) aptInstall(["debootstrap"]);
    mkdirSync(cacheDir, { recursive: true });
    const work = mkdtempSync(join(CACHE, "build-"));
    try {
      const fs = join(work, "rootfs");
      console.log(`debootstrap ${SUITE} from ${debianMirror()}`);
      run("debootstrap", ["--variant=minbase", SUITE, fs, debianMirror()]);
      // What a slim image leaves out: package caches and lists, documentation.
      for (const dir of ["var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"]) {
        run("sh", ["-c", `rm -rf ${join(fs, dir)}/*`]);
      }
      run("sh", ["-c", `rm -rf ${fs}/usr/share/info ${fs}/usr/share/locale/*`]);

      const bin = join(fs, "usr/local/bin");
      mkdirSync(bin, { recursive: true });
      execFileSync("cp", [binary, join(bin, "node")]);
      chmodSync(join(bin, "node"), 0o755);
      const npmDir = join(fs, "usr/local/lib/node_modules/npm");
      mkdirSync(npmDir, { recursive: true });
      // npm's registry tarball bundles all its dependencies; the host's npm fetches it.
      const packed = execFileSync(
        "npm",
        ["pack", `npm@${NPM_VERSION}`, "--silent", "--pack-destination", work],
        { encoding: "utf8" },
      ).trim();
      run("tar", ["-xzf", join(work, packed), "-C", npmDir, "--strip-components=1"]);
      symlinkSync("../lib/node_modules/npm/bin/npm-cli.js", join(bin, "npm"));
      symlinkSync("../lib/node_modules/npm/bin/npx-cli.js", join(bin, "npx"));

      // The user of node:24-slim, so that npm run by UID 1000 has a home for its cache.
      const append = (file: string, line: string) =>
        writeFileSync(join(fs, file), `${readFileSync(join(fs, file), "utf8")}${line}\n`);
      append("etc/passwd", "node:x:1000:1000::/home/node:/bin/bash");
      append("etc/group", "node:x:1000:");
      mkdirSync(join(fs, "home/node"));
      execFileSync("chown", ["1000:1000", join(fs, "home/node")]);

      const partial = `${tarball}.partial`;
      run("tar", ["--numeric-owner", "-C", fs, "-cf", partial, "."]);
      renameSync(partial, tarball);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  run(DOCKER, [
    "import",
    "--change",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--change",
    'CMD ["node"]',
    tarball,
    name,
  ]);
  console.log(`base image ${name} (from ${tarball})`);
  return name;
}

/** Builds one target of the Dockerfile on the local base image. */
export function buildTarget(base: string, target: keyof typeof IMAGES): void {
  const args = ["build", "--network", "host", "--target", target, "-t", IMAGES[target]];
  args.push("--build-arg", `NODE_IMAGE=${base}`);
  // A TLS-intercepting proxy on the way to the registry: npm inside the build trusts the
  // host's CA bundle, mounted as a secret so that it stays out of the image's layers.
  const ca = process.env.NODE_EXTRA_CA_CERTS ?? process.env.SSL_CERT_FILE;
  if (ca && existsSync(ca)) {
    args.push("--secret", `id=ca,src=${ca}`, "--build-arg", "NODE_EXTRA_CA_CERTS=/run/secrets/ca");
  }
  for (const variable of ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]) {
    const value = process.env[variable] ?? process.env[variable.toLowerCase()];
    if (value) args.push("--build-arg", `${variable}=${value}`);
  }
  run(DOCKER, [...args, root], { input: undefined });
  const size = Number(
    execFileSync(DOCKER, ["image", "inspect", "-f", "{{.Size}}", IMAGES[target]], {
      encoding: "utf8",
    }),
  );
  console.log(`image ${IMAGES[target]} (${target}): ${(size / 1e6).toFixed(0)} MB`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const command = process.argv[2];
  process.env.DOCKER_BUILDKIT = "1";
  if (command === "base") {
    await ensureBase();
  } else if (command === "build") {
    const base = await ensureBase();
    buildTarget(base, "production");
    buildTarget(base, "dev");
  } else if (command === "stop") {
    await stopDocker();
  } else {
    console.error("usage: node scripts/image.ts base | build | stop");
    process.exit(2);
  }
}
