// Crash points for the fault suite: moments that timing alone cannot hit reliably, such as
// "after the S3 write, before the database commit". Off unless SLUICE_FAULT is set, and
// refused outright in production.
export type FaultPoint = "after-s3-put" | "after-commit" | "after-publish";

const POINTS: readonly FaultPoint[] = ["after-s3-put", "after-commit", "after-publish"];

export type Faults = Readonly<{
  /** Kills this process, as SIGKILL would, when `point` is reached for the chosen time. */
  hit(point: FaultPoint): void;
}>;

export const NO_FAULTS: Faults = Object.freeze({ hit() {} });

/** Parses `<point>:<n>`: die the n-th time the point is reached. */
export function parseFaults(spec: string | undefined, env: string): Faults {
  if (!spec) return NO_FAULTS;
  if (env === "production") throw new Error("SLUICE_FAULT must not be set in production");
  const [point, nth] = spec.split(":");
  const times = Number(nth);
  if (!POINTS.includes(point as FaultPoint) || !Number.isInteger(times) || times < 1) {
    throw new Error(`SLUICE_FAULT must be <point>:<n> with point one of ${POINTS.join(", ")}`);
  }
  let seen = 0;
  return {
    hit(reached) {
      if (reached === point && ++seen === times) process.kill(process.pid, "SIGKILL");
    },
  };
}
