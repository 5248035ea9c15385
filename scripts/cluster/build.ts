// Builds the cluster's programs from their Go modules into the cache, once per version.
// Usage: node scripts/cluster/build.ts   (CI runs it early; cluster:up and npm run tilt build
// what each needs)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CACHE_DIR,
  COREDNS_BIN,
  GO_ENV,
  KEDA_BIN,
  KUBE_ROUTER_BIN,
  KUBERNETES_BIN,
  PAUSE_BIN,
  TILT_BIN,
} from "./paths.ts";
import { KUBERNETES_PROGRAMS, VERSIONS } from "./versions.ts";

function go(args: string[], cwd: string, env: Record<string, string> = {}): string {
  const result = spawnSync("go", args, {
    cwd,
    env: { ...process.env, ...GO_ENV, ...env },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.status !== 0) throw new Error(`go ${args.join(" ")} failed (exit ${result.status})`);
  return result.stdout;
}

/**
 * k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, ...) at
 * ./staging with version v0.0.0; outside its repository each must be replaced by the
 * release published with it.
 */
function stagingModules(): string[] {
  const info = JSON.parse(
    go(["mod", "download", "-json", `k8s.io/kubernetes@v${VERSIONS.kubernetes}`], CACHE_DIR),
  ) as { GoMod: string };
  const modules = [
    ...readFileSync(info.GoMod, "utf8").matchAll(/^\s*(k8s\.io\/\S+) => \.\/staging/gm),
  ].map((m) => m[1] as string);
  if (modules.length === 0) throw new Error(`no staging modules in ${info.GoMod}`);
  return modules;
}

// The version the programs report (kubectl version, the Node's kubeletVersion).
function versionFlags(): string {
  const [major, minor] = VERSIONS.kubernetes.split(".");
  const flags = ["-s", "-w"];
  for (const pkg of ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]) {
    flags.push(
      `-X ${pkg}.gitVersion=v${VERSIONS.kubernetes}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
      `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
    );
  }
  return flags.join(" ");
}

export function ensureKubernetes(): string {
  if (KUBERNETES_PROGRAMS.every((p) => existsSync(join(KUBERNETES_BIN, p)))) return KUBERNETES_BIN;
  const home = dirname(KUBERNETES_BIN);
  const src = join(home, "src");
  mkdirSync(src, { recursive: true });
  console.log(`building Kubernetes ${VERSIONS.kubernetes} into ${KUBERNETES_BIN} (once)`);
  const replaces = stagingModules()
    .map((m) => `\t${m} => ${m} v${VERSIONS.kubernetesStaging}`)
    .join("\n");
  writeFileSync(
    join(src, "go.mod"),
    `module sluice.local/cluster\n\ngo 1.25\n\nrequire k8s.io/kubernetes v${VERSIONS.kubernetes}\n\nreplace (\n${replaces}\n)\n`,
  );
  const imports = KUBERNETES_PROGRAMS.map((p) => `\t_ "k8s.io/kubernetes/cmd/${p}"`).join("\n");
  writeFileSync(
    join(src, "tools.go"),
    `//go:build tools\n\npackage tools\n\nimport (\n${imports}\n)\n`,
  );
  go(["mod", "tidy"], src);
  const partial = `${KUBERNETES_BIN}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  // One invocation: the programs share most packages, so each compiles once.
  go(
    [
      "build",
      "-trimpath",
      `-ldflags=${versionFlags()}`,
      "-o",
      `${partial}/`,
      ...KUBERNETES_PROGRAMS.map((p) => `k8s.io/kubernetes/cmd/${p}`),
    ],
    src,
  );
  rmSync(KUBERNETES_BIN, { recursive: true, force: true });
  renameSync(partial, KUBERNETES_BIN);
  return KUBERNETES_BIN;
}

/** CoreDNS, from its own module so its dependencies are the ones it was released with. */
export function ensureCoreDns(): string {
  if (existsSync(COREDNS_BIN)) return COREDNS_BIN;
  const src = join(dirname(dirname(COREDNS_BIN)), "src");
  mkdirSync(src, { recursive: true });
  console.log(`building CoreDNS ${VERSIONS.coredns} into ${COREDNS_BIN} (once)`);
  writeFileSync(
    join(src, "go.mod"),
    `module sluice.local/coredns\n\ngo 1.25\n\nrequire github.com/coredns/coredns v${VERSIONS.coredns}\n`,
  );
  writeFileSync(
    join(src, "tools.go"),
    `//go:build tools\n\npackage tools\n\nimport _ "github.com/coredns/coredns"\n`,
  );
  go(["mod", "tidy"], src);
  go(
    [
      "build",
      "-trimpath",
      "-ldflags=-s -w",
      "-o",
      `${COREDNS_BIN}.partial`,
      "github.com/coredns/coredns",
    ],
    src,
  );
  renameSync(`${COREDNS_BIN}.partial`, COREDNS_BIN);
  return COREDNS_BIN;
}

/**
 * A released module's own directory: built there, its go.mod's replace and exclude
 * directives and its go.sum apply as they did for the release.
 */
function moduleDir(module: string, version: string): string {
  const info = JSON.parse(go(["mod", "download", "-json", `${module}@v${version}`], CACHE_DIR)) as {
    Dir: string;
  };
  return info.Dir;
}

/**
 * KEDA's operator and metrics API server, named as in its images (/keda, /keda-adapter).
 * Built as its Makefile does: static, the version stamped in.
 */
export function ensureKeda(): string {
  const programs = { keda: "cmd/operator", "keda-adapter": "cmd/adapter" };
  if (Object.keys(programs).every((p) => existsSync(join(KEDA_BIN, p)))) return KEDA_BIN;
  console.log(`building KEDA ${VERSIONS.keda} into ${KEDA_BIN} (once)`);
  const src = moduleDir("github.com/kedacore/keda/v2", VERSIONS.keda);
  const partial = `${KEDA_BIN}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  // One invocation, so the packages the two share compile once.
  go(
    [
      "build",
      "-trimpath",
      `-ldflags=-s -w -X=github.com/kedacore/keda/v2/version.Version=${VERSIONS.keda}`,
      "-o",
      `${partial}/`,
      ...Object.values(programs).map((dir) => `./${dir}`),
    ],
    src,
    { CGO_ENABLED: "0" },
  );
  for (const [name, dir] of Object.entries(programs)) {
    renameSync(join(partial, dir.split("/")[1] as string), join(partial, name));
  }
  rmSync(KEDA_BIN, { recursive: true, force: true });
  renameSync(partial, KEDA_BIN);
  return KEDA_BIN;
}

/** The directory of KEDA's deployment manifests (config/), in the module as released. */
export function kedaConfigDir(): string {
  return join(moduleDir("github.com/kedacore/keda/v2", VERSIONS.keda), "config");
}

/** The Gateway API's standard channel: the kustomization of its module's CRDs. */
export function gatewayApiCrds(): string {
  return join(moduleDir("sigs.k8s.io/gateway-api", VERSIONS.gatewayApi), "config", "crd");
}

/** The definitions of the kinds charts/services makes: CloudNativePG's Cluster, RabbitmqCluster. */
export function serviceOperatorCrds(): string[] {
  const bases = (module: string, version: string) =>
    join(moduleDir(module, version), "config", "crd", "bases");
  return [
    join(
      bases("github.com/cloudnative-pg/cloudnative-pg", VERSIONS.cloudnativePg),
      "postgresql.cnpg.io_clusters.yaml",
    ),
    join(
      bases("github.com/rabbitmq/cluster-operator/v2", VERSIONS.rabbitmqClusterOperator),
      "rabbitmq.com_rabbitmqclusters.yaml",
    ),
  ];
}

/** kube-router, of which the cluster runs the network policy controller alone. */
export function ensureKubeRouter(): string {
  if (existsSync(KUBE_ROUTER_BIN)) return KUBE_ROUTER_BIN;
  console.log(`building kube-router ${VERSIONS.kubeRouter} into ${KUBE_ROUTER_BIN} (once)`);
  const src = moduleDir("github.com/cloudnativelabs/kube-router/v2", VERSIONS.kubeRouter);
  mkdirSync(dirname(KUBE_ROUTER_BIN), { recursive: true });
  go(
    [
      "build",
      "-trimpath",
      `-ldflags=-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v${VERSIONS.kubeRouter}`,
      "-o",
      `${KUBE_ROUTER_BIN}.partial`,
      "./cmd/kube-router",
    ],
    src,
    { CGO_ENABLED: "0" },
  );
  renameSync(`${KUBE_ROUTER_BIN}.partial`, KUBE_ROUTER_BIN);
  return KUBE_ROUTER_BIN;
}

/** The pod sandbox's process (pause/pause.go), static, for the sandbox image. */
export function ensurePause(): string {
  if (existsSync(PAUSE_BIN)) return PAUSE_BIN;
  const src = join(dirname(PAUSE_BIN), "src");
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, "go.mod"), "module sluice.local/pause\n\ngo 1.25\n");
  writeFileSync(
    join(src, "pause.go"),
    readFileSync(join(dirname(fileURLToPath(import.meta.url)), "pause", "pause.go")),
  );
  go(["build", "-trimpath", "-ldflags=-s -w", "-o", `${PAUSE_BIN}.partial`, "."], src, {
    CGO_ENABLED: "0",
  });
  renameSync(`${PAUSE_BIN}.partial`, PAUSE_BIN);
  return PAUSE_BIN;
}

/**
 * Tilt's command line, built from its module as its release is, with the version stamped in
 * (a build without one takes itself for a checkout of Tilt and serves its web UI from the
 * sources). The module does not ship the web UI's compiled files, which a release embeds
 * from pkg/assets/build: a copy of the module embeds one page in their place that says so,
 * so that Tilt starts and serves its API, its terminal view and its port forwards.
 */
export function ensureTilt(): string {
  if (existsSync(TILT_BIN)) return TILT_BIN;
  console.log(`building Tilt ${VERSIONS.tilt} into ${TILT_BIN} (once)`);
  const src = join(dirname(dirname(TILT_BIN)), "src");
  rmSync(src, { recursive: true, force: true });
  mkdirSync(dirname(src), { recursive: true });
  // The module cache's files are read-only; the copy's are the builder's.
  const copy = spawnSync(
    "cp",
    ["-r", "--no-preserve=mode", moduleDir("github.com/tilt-dev/tilt", VERSIONS.tilt), src],
    { stdio: "inherit" },
  );
  if (copy.status !== 0) throw new Error(`copying Tilt's module failed (exit ${copy.status})`);
  writeFileSync(
    join(src, "pkg/assets/build/index.html"),
    `<!doctype html>
<html lang="en">
<title>Tilt ${VERSIONS.tilt}</title>
<body style="font-family: sans-serif; margin: 2em">
<h1>Tilt ${VERSIONS.tilt}, built from its Go module</h1>
<p>This build of Tilt has no web UI: its compiled files are not part of the Go module.
Everything else works: the terminal view of <code>tilt up</code>, <code>tilt ci</code>,
the port forwards, and <code>tilt get uiresources</code>, <code>tilt logs</code> and
<code>tilt trigger</code> against this API server.</p>
</body>
</html>
`,
  );
  mkdirSync(dirname(TILT_BIN), { recursive: true });
  // The module's zip keeps vendor/modules.txt without the vendored code: modules instead.
  go(
    [
      "build",
      "-mod=mod",
      "-trimpath",
      `-ldflags=-s -w -X main.version=${VERSIONS.tilt} -X main.date=1970-01-01`,
      "-o",
      `${TILT_BIN}.partial`,
      "./cmd/tilt",
    ],
    src,
    // Its Tiltfile language server parses with tree-sitter, which is C.
    { CGO_ENABLED: "1" },
  );
  renameSync(`${TILT_BIN}.partial`, TILT_BIN);
  return TILT_BIN;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureKubernetes();
  ensureCoreDns();
  ensurePause();
  ensureKeda();
  ensureKubeRouter();
  gatewayApiCrds();
  serviceOperatorCrds();
  // For the Tiltfile's check; cluster:up itself does not need it.
  ensureTilt();
}
