// Coverage of the programs the image and cluster checks run in containers. With
// NODE_V8_COVERAGE set (CI sets it for every suite), a container's node writes its V8
// coverage to a folder mounted from this machine, beside NODE_V8_COVERAGE's; `npm run
// coverage` maps what it wrote from the image's /app onto this checkout, whose dist/ is the
// image's, byte for byte, with the source maps the image leaves out.
import { chmodSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

/** Where containers' programs write their coverage, when coverage is being measured. */
export const CONTAINER_COVERAGE = process.env.NODE_V8_COVERAGE
  ? join(dirname(process.env.NODE_V8_COVERAGE), "containers")
  : undefined;

/** The path a container writes its coverage to. */
export const COVERAGE_IN_CONTAINER = "/coverage";

/**
 * A folder of CONTAINER_COVERAGE for one container or namespace, writable by the
 * programs' UID (1000) however it is mounted; undefined when coverage is not measured.
 */
export function containerCoverageDir(name: string): string | undefined {
  if (!CONTAINER_COVERAGE) return undefined;
  const dir = join(CONTAINER_COVERAGE, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  return dir;
}
