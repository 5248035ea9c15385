// Tilt, built on first use unless CI's early build (scripts/cluster/build.ts) made it, run
// against the local cluster: kubectl and helm (the npm devDependency's, which the Tiltfile
// runs) on its PATH, the cluster's kubeconfig unless KUBECONFIG names another, and the
// local Node base image (npm run image:base) as the Dockerfile's NODE_IMAGE unless
// NODE_IMAGE names another.
// Usage: npm run tilt -- <tilt arguments>, e.g. npm run tilt -- up -- --services=outside
import { spawn, spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { helmPath, kubectlPath } from "../helm.ts";
import { baseImage, DOCKER } from "../image.ts";
import { ensureTilt } from "./build.ts";
import { ADMIN_KUBECONFIG, TILT_BIN } from "./paths.ts";

export function tiltEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const base = baseImage();
  const hasBase =
    env.NODE_IMAGE === undefined &&
    spawnSync(DOCKER, ["image", "inspect", base], { stdio: "ignore" }).status === 0;
  return {
    ...env,
    PATH: [dirname(kubectlPath()), dirname(helmPath()), env.PATH].join(":"),
    KUBECONFIG: env.KUBECONFIG ?? ADMIN_KUBECONFIG,
    ...(hasBase ? { NODE_IMAGE: base } : {}),
    // The cluster's machines reach no analytics server.
    TILT_DISABLE_ANALYTICS: env.TILT_DISABLE_ANALYTICS ?? "1",
    DOCKER_BUILDKIT: "1",
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureTilt();
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const child = spawn(TILT_BIN, process.argv.slice(2), {
    cwd: root,
    env: tiltEnv(),
    stdio: "inherit",
  });
  // Ctrl-C reaches Tilt itself (the same process group); this waits for it to stop.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
