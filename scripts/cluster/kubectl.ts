// kubectl as the cluster's administrator, for the scripts that set the cluster up.
import { spawnSync } from "node:child_process";
import { kubectlPath } from "../helm.ts";
import { ADMIN_KUBECONFIG } from "./paths.ts";

/** Runs kubectl with the admin kubeconfig; throws with what it printed unless it exits 0. */
export function kubectl(args: readonly string[], input?: string): string {
  const result = spawnSync(kubectlPath(), ["--kubeconfig", ADMIN_KUBECONFIG, ...args], {
    encoding: "utf8",
    input,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(`kubectl ${args.join(" ")} failed: ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}
