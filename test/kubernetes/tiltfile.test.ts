// The Tiltfile, run without Tilt by tilt/tiltfile_calls.py (Python's parser and Tilt's
// documented signatures; see that file for what it does and does not check). The calls it
// records are then checked against the repository: paths, images, workloads and ports.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { scratchDir } from "../support/scratch.ts";
import {
  chartDir,
  container,
  deploymentSpec,
  parseYamlStream,
  type Rendered,
  render,
  root,
} from "./chart.ts";

type Call = { function: string; arguments: Record<string, unknown> };

async function tiltCalls(tiltfile: string, options: readonly string[] = []): Promise<Call[]> {
  const { stdout } = await promisify(execFile)(
    "python3",
    [join(root, "tilt", "tiltfile_calls.py"), tiltfile, "--", ...options],
    { cwd: root },
  );
  return JSON.parse(stdout);
}

const calls = await tiltCalls(join(root, "Tiltfile"));
const called = (name: string) => calls.filter((c) => c.function === name);
/** Tilt accepts one value or a list in most places; this gives the strings among them. */
const list = (value: unknown): string[] =>
  (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === "string");

/** The chart the Tiltfile renders with `helm template` (a local() command given as a list). */
function chartRender(from: readonly Call[]): {
  release: string;
  chart: string;
  values: string[];
  set: string[];
} {
  const renders = from
    .filter((c) => c.function === "local" && Array.isArray(c.arguments.command))
    .map((c) => c.arguments.command as string[])
    .filter((command) => command[0] === "helm" && command[1] === "template");
  assert.equal(renders.length, 1, "one helm template");
  const [, , release, chart, ...flags] = renders[0] as string[];
  const after = (flag: string) => flags.filter((_, i) => flags[i - 1] === flag);
  assert.ok(
    k8sYamlOf(from).some((c) => (c.arguments.yaml as Call)?.function === "local"),
    "its output goes to k8s_yaml",
  );
  return {
    release: String(release),
    chart: String(chart),
    values: after("--values"),
    set: after("--set"),
  };
}
const k8sYamlOf = (from: readonly Call[]) => from.filter((c) => c.function === "k8s_yaml");

test("every path the Tiltfile names exists", () => {
  const paths = [
    ...called("k8s_yaml").flatMap((c) =>
      list(c.arguments.yaml).filter((y) => typeof y === "string"),
    ),
    ...((render) => [render.chart, ...render.values])(chartRender(calls)),
    ...called("docker_build").flatMap((c) => [c.arguments.context, ...list(c.arguments.only)]),
    ...called("sync").map((c) => c.arguments.local_path),
    ...called("run").flatMap((c) => list(c.arguments.trigger)),
  ];
  assert.ok(paths.length > 10);
  for (const path of paths)
    assert.ok(existsSync(join(root, String(path))), `${path} does not exist`);
  for (const resource of called("local_resource")) {
    const command = String(resource.arguments.cmd).split(" ")[0] ?? "";
    if (command.includes("/"))
      assert.ok(existsSync(join(root, command)), `${command} does not exist`);
  }
});

test("the image is the Dockerfile's dev stage, live-updated by sync then npm ci --omit=dev", () => {
  const [build] = called("docker_build");
  assert.ok(build);
  const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
  assert.match(dockerfile, new RegExp(`^FROM \\S+ AS ${build.arguments.target}$`, "m"));
  const devValues = parse(readFileSync(join(chartDir, "values-dev.yaml"), "utf8"));
  assert.equal(build.arguments.ref, devValues.image.repository);

  const steps = build.arguments.live_update as Call[];
  const firstRun = steps.findIndex((s) => s.function === "run");
  assert.ok(
    steps.slice(firstRun).every((s) => s.function === "run"),
    "syncs come before runs",
  );
  const synced = steps.filter((s) => s.function === "sync");
  assert.ok(
    synced.some((s) => s.arguments.local_path === "src" && s.arguments.remote_path === "/app/src"),
  );
  const install = steps.find((s) => s.function === "run");
  // The dev stage holds production dependencies only; so does the pod after a change.
  assert.equal(install?.arguments.cmd, "npm ci --omit=dev");
  assert.deepEqual(list(install?.arguments.trigger).sort(), ["package-lock.json", "package.json"]);
  for (const trigger of list(install?.arguments.trigger)) {
    assert.ok(
      synced.some((s) => s.arguments.local_path === trigger),
      `${trigger} is synced`,
    );
  }
});

test("resources name real workloads and forward ports their containers open", async () => {
  const chart = chartRender(calls);
  const workloads: Rendered[] = [
    ...(await render({
      release: chart.release,
      files: chart.values.map((v) => join(root, v)),
    })),
    ...called("k8s_yaml")
      .flatMap((c) => list(c.arguments.yaml))
      .flatMap((file) => parseYamlStream(readFileSync(join(root, file), "utf8")) as Rendered[]),
  ].filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");

  const forwarded = new Map<string, number[]>();
  for (const resource of called("k8s_resource")) {
    if (!resource.arguments.workload) continue;
    const workload = workloads.find((w) => w.metadata.name === resource.arguments.workload);
    assert.ok(workload, `no workload ${resource.arguments.workload}`);
    const containerPorts = deploymentSpec(workload).template.spec.containers.flatMap(
      (c) => c.ports?.map((p) => p.containerPort) ?? [],
    );
    const name = String(resource.arguments.new_name || resource.arguments.workload);
    for (const forward of (resource.arguments.port_forwards ?? []) as Call[]) {
      const { local_port, container_port } = forward.arguments;
      assert.ok(
        containerPorts.includes(Number(container_port ?? local_port)),
        `${name}: ${local_port}`,
      );
      forwarded.set(name, [...(forwarded.get(name) ?? []), Number(local_port)]);
    }
  }
  assert.deepEqual(Object.fromEntries(forwarded), {
    rabbitmq: [15672],
    api: [3000, 9229],
    worker: [9230],
    controller: [9231],
  });
  const api = workloads.find((w) => w.metadata.name === "sluice-api");
  assert.ok(
    api &&
      container(api).command?.join(" ") === "node --inspect=0.0.0.0:9229 --watch src/api/main.ts",
    "the api runs its debug script",
  );
});

test("--services=outside points the programs at this machine's services through forwards", async () => {
  const address = "10.9.8.7";
  const outside = await tiltCalls(join(root, "Tiltfile"), [
    "--services=outside",
    `--outside-address=${address}`,
    "--api-port=3100",
  ]);
  const of = (name: string) => outside.filter((c) => c.function === name);
  // None of k8s/ is applied.
  assert.deepEqual(
    of("k8s_yaml").filter((c) => list(c.arguments.yaml).some((y) => y.startsWith("k8s/"))),
    [],
  );
  const serve = of("local_resource").find((c) => c.arguments.name === "services-outside");
  assert.ok(serve);
  const [command, script, listenOn, ...forwards] = String(serve.arguments.serve_cmd).split(" ");
  assert.equal(command, "node_modules/.bin/node");
  assert.ok(existsSync(join(root, String(script))), `${script} does not exist`);
  assert.equal(listenOn, address);
  const forwardedTo = new Map(forwards.map((f) => [Number(f.split("=")[0]), f.split("=")[1]]));
  assert.deepEqual([...forwardedTo.values()].sort(), [
    "127.0.0.1:5432",
    "127.0.0.1:5672",
    "127.0.0.1:6379",
    "s3",
  ]);

  // Each Service's endpoint is a forward on the address, to the service it is named for.
  const objects = of("encode_yaml_stream").flatMap((c) => c.arguments.objs as Rendered[]);
  const services = objects.filter((o) => o.kind === "Service") as any[];
  const slices = objects.filter((o) => o.kind === "EndpointSlice") as any[];
  const expected: Record<string, string> = {
    postgresql: "127.0.0.1:5432",
    redis: "127.0.0.1:6379",
    rabbitmq: "127.0.0.1:5672",
    s3: "s3",
  };
  assert.deepEqual(services.map((s) => s.metadata.name).sort(), Object.keys(expected).sort());
  for (const service of services) {
    const name = service.metadata.name;
    const slice = slices.find((s) => s.metadata.labels["kubernetes.io/service-name"] === name);
    assert.ok(slice, `no EndpointSlice for ${name}`);
    assert.deepEqual(slice.endpoints[0].addresses, [address]);
    const port = slice.ports[0].port;
    assert.equal(service.spec.ports[0].targetPort, port, name);
    assert.equal(forwardedTo.get(port), expected[name], name);
  }
  const endpoints = of("k8s_resource").find((c) => c.arguments.new_name === "services-endpoints");
  assert.deepEqual(
    list(endpoints?.arguments.objects).sort(),
    objects.map((o) => `${o.metadata.name}:${o.kind.toLowerCase()}`).sort(),
  );

  // The programs wait for both, and their URLs name those Services on their ports.
  for (const program of ["sluice-api", "sluice-worker", "sluice-controller"]) {
    const resource = of("k8s_resource").find((c) => c.arguments.workload === program);
    const deps = list(resource?.arguments.resource_deps);
    assert.ok(deps.includes("services-endpoints") && deps.includes("services-outside"), program);
  }
  const { set } = chartRender(outside);
  const urls = set
    .filter((s) => /_URL=|AWS_ENDPOINT=/.test(s))
    .map((s) => new URL(s.split("=")[1] as string));
  for (const url of urls) {
    const service = services.find((s) => s.metadata.name === url.hostname);
    assert.ok(service, `${url} names no Service`);
    assert.equal(Number(url.port || 80), service.spec.ports[0].port, String(url));
  }
  assert.deepEqual(urls.map((u) => u.protocol).sort(), ["amqp:", "http:", "postgres:"]);
  const api = of("k8s_resource").find((c) => c.arguments.workload === "sluice-api");
  const [apiForward] = (api?.arguments.port_forwards ?? []) as Call[];
  assert.equal(apiForward?.arguments.local_port, 3100);
});

test("an unknown --services value or option fails the Tiltfile", async () => {
  await assert.rejects(
    tiltCalls(join(root, "Tiltfile"), ["--services=elsewhere"]),
    /--services is cluster or outside, not elsewhere/,
  );
  await assert.rejects(
    tiltCalls(join(root, "Tiltfile"), ["--service=outside"]),
    /unknown option --service/,
  );
});

test("buttons upload a sample and run the tests, only when pressed", () => {
  const buttons = new Map(called("local_resource").map((c) => [c.arguments.name, c.arguments]));
  for (const name of ["upload-sample", "tests"]) {
    assert.equal(buttons.get(name)?.trigger_mode, "TRIGGER_MODE_MANUAL", name);
    assert.equal(buttons.get(name)?.auto_init, false, name);
  }
  assert.equal(buttons.get("tests")?.cmd, "npm test");
});

test("the checker rejects unknown functions and arguments and non-Starlark syntax", async () => {
  const dir = scratchDir("tiltfile");
  const cases: [string, RegExp][] = [
    ['k8s_yml("k8s/redis.yaml")\n', /name 'k8s_yml' is not defined/],
    ['k8s_resource("redis", port_forward=[6379])\n', /unexpected keyword argument 'port_forward'/],
    ['docker_build("sluice-dev")\n', /missing a required argument: 'context'/],
    ['name = "x"\nprint(f"{name}")\n', /f-string is not Starlark/],
    ['data = open("Tiltfile").read()\n', /name 'open' is not defined/],
  ];
  for (const [source, expected] of cases) {
    const file = join(dir, "Tiltfile");
    writeFileSync(file, source);
    await assert.rejects(tiltCalls(file), expected, source);
  }
});
