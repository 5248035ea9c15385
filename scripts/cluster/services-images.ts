// Images for the services of k8s/ made from Debian's packages, since no registry can be
// reached here: one root filesystem (debootstrap, then PostgreSQL, Valkey, RabbitMQ and
// Moto's server from Debian) and over it one image per service, each with the command,
// user and environment by which the upstream image k8s/ pins serves its manifest. The
// archive is kept in the cache, keyed by suite and recipe, and imported into the node's
// containerd like the cluster's other local images.
// Usage: node scripts/cluster/services-images.ts   (builds the archive when missing)

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { importImage } from "./node.ts";
import { CACHE_DIR } from "./paths.ts";
import { VERSIONS } from "./versions.ts";

/** The Debian release whose packages match the major versions k8s/ pins. */
export const SERVICES_SUITE = "trixie";
const PACKAGES = [
  "postgresql-17",
  "valkey-server",
  "valkey-tools",
  "rabbitmq-server",
  "python3-moto",
  // Moto's server needs it; Debian's python3-moto does not depend on it.
  "python3-flask-cors",
];
const TAG = `${SERVICES_SUITE}-${VERSIONS.servicesImages}`;
const ARCHIVE_DIR = join(CACHE_DIR, `services-${TAG}`);
export const SERVICES_ARCHIVE = join(ARCHIVE_DIR, "images.tar");
/** The users of the upstream images run as 999, as the manifests say; Moto as anyone. */
const SERVICE_UID = 999;
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

type ImageConfig = Readonly<{
  Entrypoint?: string[];
  Cmd?: string[];
  Env: string[];
  User: string;
  WorkingDir?: string;
}>;

/** Each image: the name k8s/ gives it (what an overlay swaps), and its local stand-in. */
export const SERVICE_IMAGES: Readonly<
  Record<string, { upstream: string; local: string; config: ImageConfig }>
> = {
  postgresql: {
    upstream: "postgres",
    local: `sluice.local/postgres:17-${TAG}`,
    config: {
      Entrypoint: ["/usr/local/bin/docker-entrypoint.sh"],
      Cmd: ["postgres"],
      Env: [
        `PATH=/usr/lib/postgresql/17/bin:${PATH}`,
        "PGDATA=/var/lib/postgresql/data",
        "LANG=C.UTF-8",
      ],
      User: `${SERVICE_UID}:${SERVICE_UID}`,
    },
  },
  redis: {
    upstream: "valkey/valkey",
    local: `sluice.local/valkey:8.1-${TAG}`,
    config: {
      Cmd: ["valkey-server"],
      Env: [`PATH=${PATH}`],
      User: `${SERVICE_UID}:${SERVICE_UID}`,
      WorkingDir: "/data",
    },
  },
  rabbitmq: {
    upstream: "rabbitmq",
    local: `sluice.local/rabbitmq:4.0-management-${TAG}`,
    config: {
      Cmd: ["rabbitmq-server"],
      Env: [
        // RabbitMQ's own scripts, not Debian's wrappers, which switch users.
        `PATH=/usr/lib/rabbitmq/bin:${PATH}`,
        "HOME=/var/lib/rabbitmq",
        "RABBITMQ_LOGS=-",
        "LANG=C.UTF-8",
      ],
      User: `${SERVICE_UID}:${SERVICE_UID}`,
    },
  },
  s3: {
    upstream: "motoserver/moto",
    local: `sluice.local/moto:5.1-${TAG}`,
    config: {
      Entrypoint: ["/usr/local/bin/moto_server", "-H", "0.0.0.0"],
      Env: [`PATH=${PATH}`, "PYTHONDONTWRITEBYTECODE=1"],
      User: "65534:65534",
    },
  },
};

// What the postgres image's entrypoint does for k8s/postgresql.yaml: a new data directory
// gets the superuser POSTGRES_USER with POSTGRES_PASSWORD, the database POSTGRES_DB, and
// password logins from the network.
const POSTGRES_ENTRYPOINT = `#!/bin/sh
set -eu
if [ "\${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=\${POSTGRES_USER:-postgres}
  database=\${POSTGRES_DB:-$user}
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  password=$(mktemp)
  printf '%s\\n' "\${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >"$password"
  initdb -D "$PGDATA" -U "$user" --pwfile="$password" -E UTF8 --locale=C.UTF-8 \\
    --auth-local=trust --auth-host=scram-sha-256
  rm -f "$password"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [ "$database" != postgres ]; then
    echo "CREATE DATABASE \\"$database\\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
fi
exec "$@"
`;

const MOTO_SERVER = `#!/bin/sh
exec python3 -m moto.server "$@"
`;

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { stdio: "inherit" });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal})`);
  }
}

/** The Debian mirror apt uses on this machine (as scripts/image.ts finds it). */
function debianMirror(): string {
  if (process.env.DEBIAN_MIRROR) return process.env.DEBIAN_MIRROR;
  const sources = "/etc/apt/sources.list.d/debian.sources";
  const text = existsSync(sources) ? readFileSync(sources, "utf8") : "";
  return /^URIs:\s*(\S+\/debian)\s*$/m.exec(text)?.[1] ?? "http://deb.debian.org/debian";
}

/** Debootstraps the suite and installs the services' packages into `fs`. */
function makeRootFilesystem(fs: string): void {
  if (!existsSync("/usr/sbin/debootstrap")) {
    run("apt-get", ["update", "-q"]);
    run("apt-get", ["install", "-y", "-q", "--no-install-recommends", "debootstrap"]);
  }
  run("debootstrap", ["--variant=minbase", SERVICES_SUITE, fs, debianMirror()]);
  // Removed first: were it a link, writing would follow it out of the root filesystem.
  rmSync(join(fs, "etc/resolv.conf"), { force: true });
  writeFileSync(join(fs, "etc/resolv.conf"), readFileSync("/etc/resolv.conf"));
  // No package may start its service, and PostgreSQL gets no cluster of its own.
  writeFileSync(join(fs, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  mkdirSync(join(fs, "etc/postgresql-common"), { recursive: true });
  writeFileSync(
    join(fs, "etc/postgresql-common/createcluster.conf"),
    "create_main_cluster = false\n",
  );
  run("mount", ["-t", "proc", "proc", join(fs, "proc")]);
  try {
    run("chroot", [fs, "apt-get", "update", "-q"]);
    run("chroot", [
      fs,
      "env",
      "DEBIAN_FRONTEND=noninteractive",
      "apt-get",
      "install",
      "-y",
      "-q",
      "--no-install-recommends",
      ...PACKAGES,
    ]);
    const versions = spawnSync("chroot", [fs, "dpkg-query", "-W", ...PACKAGES], {
      encoding: "utf8",
    }).stdout;
    console.log(`services image packages (${SERVICES_SUITE}):\n${versions.trim()}`);
  } finally {
    run("umount", [join(fs, "proc")]);
  }
  for (const dir of ["var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"]) {
    run("sh", ["-c", `rm -rf ${join(fs, dir)}/*`]);
  }
  rmSync(join(fs, "usr/sbin/policy-rc.d"));
  writeFileSync(join(fs, "etc/resolv.conf"), "");

  // The services' users become 999, as in the upstream images.
  for (const file of ["etc/passwd", "etc/group"]) {
    const lines = readFileSync(join(fs, file), "utf8")
      .split("\n")
      .map((line) => {
        const fields = line.split(":");
        if (!["postgres", "valkey", "rabbitmq"].includes(fields[0] ?? "")) return line;
        fields[2] = String(SERVICE_UID);
        if (file === "etc/passwd") fields[3] = String(SERVICE_UID);
        return fields.join(":");
      });
    writeFileSync(join(fs, file), lines.join("\n"));
  }
  // Inside the root filesystem, where its absolute links lead (/var/run is /run there): a
  // path joined onto it from outside would follow them to this machine's own directories.
  const owned = [
    "/run/postgresql",
    "/var/lib/postgresql",
    "/var/lib/rabbitmq",
    "/var/log/rabbitmq",
    "/etc/rabbitmq",
    "/var/lib/valkey",
    "/var/log/valkey",
    "/data",
  ];
  run("chroot", [
    fs,
    "sh",
    "-c",
    `set -e; mkdir -p /var/lib/postgresql/data ${owned.join(" ")}; ` +
      `chown -R ${SERVICE_UID}:${SERVICE_UID} ${owned.join(" ")}; chmod 2775 /run/postgresql`,
  ]);
  // The -management image's plugins: the UI on 15672, Prometheus metrics on 15692.
  writeFileSync(
    join(fs, "etc/rabbitmq/enabled_plugins"),
    "[rabbitmq_management,rabbitmq_prometheus].\n",
  );
  writeFileSync(join(fs, "usr/local/bin/docker-entrypoint.sh"), POSTGRES_ENTRYPOINT, {
    mode: 0o755,
  });
  writeFileSync(join(fs, "usr/local/bin/moto_server"), MOTO_SERVER, { mode: 0o755 });
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest("hex");
}

/** Builds the archive of the four images (one shared layer), unless the cache holds it. */
export async function ensureServicesArchive(): Promise<string> {
  if (existsSync(SERVICES_ARCHIVE)) return SERVICES_ARCHIVE;
  mkdirSync(ARCHIVE_DIR, { recursive: true });
  const work = mkdtempSync(join(ARCHIVE_DIR, "build-"));
  try {
    const fs = join(work, "rootfs");
    makeRootFilesystem(fs);
    const stage = join(work, "stage");
    mkdirSync(stage);
    run("tar", ["--numeric-owner", "-C", fs, "-cf", join(stage, "layer.tar"), "."]);
    rmSync(fs, { recursive: true, force: true });
    const diffId = `sha256:${await sha256File(join(stage, "layer.tar"))}`;
    const manifest = [];
    for (const image of Object.values(SERVICE_IMAGES)) {
      const config = Buffer.from(
        JSON.stringify({
          architecture: "amd64",
          os: "linux",
          config: image.config,
          rootfs: { type: "layers", diff_ids: [diffId] },
        }),
      );
      const name = `${createHash("sha256").update(config).digest("hex")}.json`;
      writeFileSync(join(stage, name), config);
      manifest.push({ Config: name, RepoTags: [image.local], Layers: ["layer.tar"] });
    }
    writeFileSync(join(stage, "manifest.json"), JSON.stringify(manifest));
    const partial = `${SERVICES_ARCHIVE}.partial`;
    run("tar", ["-C", stage, "-cf", partial, "."]);
    renameSync(partial, SERVICES_ARCHIVE);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return SERVICES_ARCHIVE;
}

/** The images in the node's containerd, built first when the cache lacks them. */
export async function importServicesImages(): Promise<void> {
  importImage(await ensureServicesArchive());
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  console.log(await ensureServicesArchive());
  console.log(`in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}
