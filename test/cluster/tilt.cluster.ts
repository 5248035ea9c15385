// The Tiltfile on the local cluster with Tilt built from source: `tilt ci` builds the dev
// image through Docker, pushes it to the registry the cluster names in its
// local-registry-hosting ConfigMap, and brings every resource up, Sluice pointed at this
// machine's services (--services=outside); then, with `tilt up` running, the api's and the
// worker's inspectors answer on 127.0.0.1:9229 and :9230 through Tilt's port forwards, and
// Tilt stops cleanly.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import amqp from "amqplib";
import pg from "pg";
import { writeKubeconfig } from "../../scripts/cluster/control-plane.ts";
import { NETWORK, TILT_BIN } from "../../scripts/cluster/paths.ts";
import { REGISTRY_HOST } from "../../scripts/cluster/registry.ts";
import { tiltEnv } from "../../scripts/cluster/tilt.ts";
import { baseImage, DOCKER } from "../../scripts/image.ts";
import { queueNames } from "../../src/core/broker/queue-names.ts";
import { loadConfig } from "../../src/core/config.ts";
import { acceptsConnections } from "../../src/core/dependencies.ts";
import { freePort, waitFor } from "../support/stack.ts";
import { createNamespace, deleteNamespace, kubectlJson, kubectlResult } from "./cluster.ts";

const ROOT = join(import.meta.dirname, "..", "..");
/** The Tiltfile's debuggers: the api's and the worker's, which this check asks. */
const INSPECTORS = { api: 9229, worker: 9230 } as const;
/** The controller's, which the Tiltfile forwards too and must be free as well. */
const CONTROLLER_INSPECTOR = 9231;
/** The Tiltfile's forward of the S3 server (the last of --services=outside). */
const S3_FORWARD = 21080;

/** Why Tilt cannot run here (no Docker engine, no base image), or undefined. */
function missingTools(): string | undefined {
  if (!existsSync(TILT_BIN))
    return `no Tilt at ${TILT_BIN}: node scripts/cluster/build.ts builds it`;
  if (spawnSync(DOCKER, ["info"], { stdio: "ignore" }).status !== 0) {
    return "no Docker engine: npm run image:build starts one";
  }
  if (spawnSync(DOCKER, ["image", "inspect", baseImage()], { stdio: "ignore" }).status !== 0) {
    return `no base image ${baseImage()}: npm run image:base makes it`;
  }
  return undefined;
}
const missing = missingTools();
// CI builds the image (and so the base) and the cluster before these checks.
if (missing && process.env.CI) throw new Error(missing);

/** An inspector's /json/version, if it answers. */
async function inspectorVersion(port: number): Promise<{ Browser: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/json/version`, {
      signal: AbortSignal.timeout(2000),
    });
    return res.ok ? ((await res.json()) as { Browser: string }) : undefined;
  } catch {
    return undefined;
  }
}

describe("Tilt", { skip: missing }, () => {
  const scratch = mkdtempSync(join(tmpdir(), "sluice-tilt-"));
  let namespace: string;
  let env: NodeJS.ProcessEnv;
  let options: string[];
  let up: ChildProcess | undefined;
  let builtImage: string | undefined;
  /** Checks that passed: the scratch folder, with Tilt's logs, stays after a failure. */
  let passed = 0;

  /** Runs tilt to its end; its output goes to a log in scratch, whose end a failure shows. */
  function tilt(args: readonly string[], name: string): { child: ChildProcess; log: string } {
    const log = join(scratch, `${name}.log`);
    const child = spawn(TILT_BIN, args, {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: what Tilt starts (the services' forwards) goes with it.
      detached: true,
    });
    const out = createWriteStream(log);
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    return { child, log };
  }
  const tail = (log: string) =>
    `${readFileSync(log, "utf8").split("\n").slice(-40).join("\n")}\n(all of it: ${log})`;
  /** The last lines the program's containers printed, the one before a restart too. */
  const programLog = async (program: string) => {
    const lines: string[] = [];
    for (const previous of [true, false]) {
      const { stdout, stderr } = await kubectlResult([
        "--namespace",
        namespace,
        "logs",
        `deployment/sluice-${program}`,
        `--previous=${previous}`,
        "--tail=20",
      ]);
      lines.push(`${previous ? "before its last restart" : "now"}: ${stdout || stderr}`);
    }
    return lines.join("\n");
  };
  const exited = async (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? { code: child.exitCode, signal: child.signalCode }
      : await once(child, "exit").then(([code, signal]) => ({ code, signal }));

  before(async () => {
    for (const port of [...Object.values(INSPECTORS), CONTROLLER_INSPECTOR]) {
      if (await acceptsConnections("127.0.0.1", port)) {
        throw new Error(`127.0.0.1:${port} is taken: the Tiltfile forwards a debugger there`);
      }
    }
    namespace = await createNamespace("sluice-tilt");
    // As `npm run tilt` runs it, as the administrator in the check's namespace (where Tilt
    // deploys), with its settings apart from the user's.
    env = tiltEnv({
      ...process.env,
      KUBECONFIG: writeKubeconfig(join(scratch, "kubeconfig"), { cert: "admin" }, namespace),
      TILT_DEV_DIR: join(scratch, "tilt-dev"),
      NODE_IMAGE: baseImage(),
    });
    options = ["--services=outside", `--api-port=${await freePort()}`];
  });

  after(async () => {
    // A tilt up that a failed check left running stops as on Ctrl-C: it stops the services'
    // forwards, which run in a session of their own that no signal to its group reaches.
    if (up?.pid && up.exitCode === null && up.signalCode === null) {
      process.kill(up.pid, "SIGINT");
      await exited(up);
    }
    if (namespace) {
      const down = tilt(["down", "--file", "Tiltfile", "--", ...options], "down");
      await exited(down.child);
      await deleteNamespace(namespace);
      // What the programs made on this machine's services: the database and the queues.
      const database = `sluice_${namespace.replaceAll("-", "_")}`;
      const admin = new pg.Client({
        connectionString: "postgres://postgres@127.0.0.1:5432/postgres",
      });
      await admin.connect();
      await admin.query(`drop database if exists "${database}" with (force)`);
      await admin.end();
      const { worker } = loadConfig({
        DATABASE_URL: "postgres://127.0.0.1/x",
        REDIS_URL: "redis://127.0.0.1",
        RABBITMQ_URL: "amqp://127.0.0.1",
      });
      const names = queueNames(`${namespace}-sluice`);
      const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
      const channel = await connection.createChannel();
      const retries = Array.from({ length: worker.maxAttempts - 1 }, (_, i) => names.retry(i + 1));
      for (const queue of [names.batches, names.dead, ...retries]) await channel.deleteQueue(queue);
      await connection.close();
    }
    if (builtImage) spawnSync(DOCKER, ["image", "rm", builtImage], { stdio: "ignore" });
    if (passed === 2) rmSync(scratch, { recursive: true, force: true });
  });

  test("tilt ci brings the Tiltfile up, the dev image through the cluster's registry", async (t) => {
    const started = Date.now();
    const ci = tilt(
      [
        "ci",
        "--file",
        "Tiltfile",
        "--port",
        String(await freePort()),
        "--timeout",
        "8m",
        "--",
        ...options,
      ],
      "ci",
    );
    const { code } = await exited(ci.child);
    assert.equal(code, 0, `tilt ci exited ${code}:\n${tail(ci.log)}`);
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    const deployment = await kubectlJson([
      "--namespace",
      namespace,
      "get",
      "deployment",
      "sluice-api",
    ]);
    builtImage = deployment.spec.template.spec.containers[0].image as string;
    assert.ok(builtImage.startsWith(`${REGISTRY_HOST}/sluice-dev:`), builtImage);
    const ready = await kubectlJson(["--namespace", namespace, "get", "deployments"]);
    const readyNames = ready.items
      .filter((d: any) => d.status.readyReplicas === d.spec.replicas && d.spec.replicas > 0)
      .map((d: any) => d.metadata.name)
      .sort();
    assert.deepEqual(readyNames, ["sluice-api", "sluice-controller", "sluice-worker"]);
    t.diagnostic(`up in ${seconds}s, api, worker and controller Ready from ${builtImage}`);
    passed++;
  });

  test("with tilt up, the api's and the worker's inspectors answer on 9229 and 9230, then Tilt stops cleanly", async (t) => {
    // What tilt ci left running lost this machine's services when tilt ci stopped their
    // forwards, and a program started in watch mode waits for a file change after a failed
    // start: tilt up deploys afresh, after its own forwards are up.
    await exited(tilt(["down", "--file", "Tiltfile", "--", ...options], "down-before-up").child);
    const run = tilt(
      [
        "up",
        "--stream",
        "--file",
        "Tiltfile",
        "--port",
        String(await freePort()),
        "--",
        ...options,
      ],
      "up",
    );
    up = run.child;
    const answers: string[] = [];
    for (const [program, port] of Object.entries(INSPECTORS)) {
      const version = await waitFor(
        `the ${program}'s inspector on 127.0.0.1:${port}`,
        async () =>
          up?.exitCode === null
            ? inspectorVersion(port)
            : Promise.reject(new Error(`tilt up exited:\n${tail(run.log)}`)),
        300_000,
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}; the ${program}'s own log:\n${await programLog(program)}\ntilt up printed:\n${tail(run.log)}`,
        );
      });
      assert.match(version.Browser, /^node\.js\/v24\./);
      answers.push(`${port} ${program}: ${version.Browser}`);
    }
    process.kill(up.pid as number, "SIGINT");
    const { code, signal } = await exited(up);
    assert.equal(code, 0, `tilt up ended ${code ?? signal}:\n${tail(run.log)}`);
    // Its forwards and the services' forwards went with it.
    for (const port of Object.values(INSPECTORS)) {
      assert.equal(
        await acceptsConnections("127.0.0.1", port),
        false,
        `127.0.0.1:${port} still answers`,
      );
    }
    assert.equal(
      await acceptsConnections(NETWORK.nodeIp, S3_FORWARD),
      false,
      "the services' forwards remain",
    );
    t.diagnostic(`${answers.join("; ")}; tilt up exited 0 on SIGINT`);
    passed++;
  });
});
