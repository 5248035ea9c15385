// Targets declared with the chart: targets.tenants becomes TARGETS_FILE's JSON in a ConfigMap,
// mounted read-only wherever the migrations run, with TARGETS_FILE naming it; or the user's own
// ConfigMap is mounted instead.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe as group, test } from "node:test";
import { parse } from "yaml";
import { parseTargetsFile } from "../../src/core/targets/targets-file.ts";
import {
  chartDir,
  container,
  deploymentSpec,
  find,
  type PodSpec,
  type Rendered,
  render,
} from "./chart.ts";
import { validateObject } from "./strict-schema.ts";

const PROGRAMS = ["api", "worker", "controller"];
const valuesFile = join(chartDir, "ci", "targets-values.yaml");
/** What the values file declares, read here as the user wrote it. */
const declared = parse(readFileSync(valuesFile, "utf8")).targets.tenants;

const settings = (objects: Rendered[]) =>
  find(objects, "ConfigMap", "sluice-config").data as Record<string, string>;

type Volume = {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
};
type Mount = { name: string; mountPath: string; readOnly?: boolean };

/** The file a pod's TARGETS_FILE names: the ConfigMap and key behind the mount that holds it. */
function mountedFile(pod: PodSpec, path: string): { configMap: string; key: string } | undefined {
  const mounts = (pod.containers[0]?.volumeMounts ?? []) as Mount[];
  const mount = mounts.find((m) => path.startsWith(`${m.mountPath}/`));
  if (!mount) return undefined;
  assert.equal(mount.readOnly, true, `${mount.mountPath} is mounted read-only`);
  const volume = (pod.volumes as Volume[] | undefined)?.find((v) => v.name === mount.name);
  const item = volume?.configMap?.items?.find(
    (i) => i.path === path.slice(mount.mountPath.length + 1),
  );
  if (!volume?.configMap || !item) return undefined;
  return { configMap: volume.configMap.name, key: item.key };
}

group("targets", () => {
  test("none by default: no ConfigMap, no mount, no TARGETS_FILE", async () => {
    const objects = await render();
    assert.equal(settings(objects).TARGETS_FILE, undefined);
    assert.deepEqual(
      objects.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name),
      ["sluice-config"],
    );
    for (const program of PROGRAMS) {
      const pod = deploymentSpec(find(objects, "Deployment", `sluice-${program}`)).template.spec;
      assert.equal(
        (pod.volumes as Volume[]).some((v) => v.name === "targets"),
        false,
      );
    }
  });

  test("targets.tenants: every program mounts the file read-only and TARGETS_FILE names it", async () => {
    const objects = await render({ files: [valuesFile] });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const path = settings(objects).TARGETS_FILE;
    assert.ok(path, "TARGETS_FILE is set");
    for (const program of PROGRAMS) {
      const deployment = find(objects, "Deployment", `sluice-${program}`);
      assert.deepEqual(
        container(deployment).envFrom?.map((e) => e.configMapRef?.name),
        ["sluice-config"],
      );
      const file = mountedFile(deploymentSpec(deployment).template.spec, path);
      assert.ok(file, `the ${program} mounts ${path}`);
      const configMap = find(objects, "ConfigMap", file.configMap);
      assert.equal(configMap.metadata.annotations?.["helm.sh/hook"], undefined);
      const text = (configMap.data as Record<string, string>)[file.key];
      assert.ok(text, `${file.configMap} holds ${file.key}`);
      assert.deepEqual(JSON.parse(text), declared);
      // The programs take it as it is.
      const parsed = parseTargetsFile(text);
      assert.ok("targets" in parsed, JSON.stringify(parsed));
      assert.deepEqual(
        parsed.targets.map((t) => `${t.tenant}/${t.name}`),
        ["acme/people"],
      );
    }
  });

  test("a change of the targets rolls the pods, which apply it as they start", async () => {
    const before = await render({ files: [valuesFile] });
    const after = await render({
      files: [valuesFile],
      set: ["targets.tenants.acme.people.mode=insert"],
    });
    for (const program of PROGRAMS) {
      const checksum = (objects: Rendered[]) =>
        (
          find(objects, "Deployment", `sluice-${program}`).spec as {
            template: { metadata: { annotations: Record<string, string> } };
          }
        ).template.metadata.annotations["checksum/targets"];
      assert.ok(checksum(before));
      assert.notEqual(checksum(after), checksum(before), program);
    }
  });

  test("targets.existingConfigMap: the programs mount that ConfigMap's key; the chart makes none", async () => {
    const objects = await render({
      set: ["targets.existingConfigMap=acme-targets", "targets.key=all.json"],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    const path = settings(objects).TARGETS_FILE;
    assert.ok(path);
    assert.match(path, /\/all\.json$/);
    for (const program of PROGRAMS) {
      const pod = deploymentSpec(find(objects, "Deployment", `sluice-${program}`)).template.spec;
      assert.deepEqual(mountedFile(pod, path), { configMap: "acme-targets", key: "all.json" });
    }
    assert.deepEqual(
      objects.filter((o) => o.kind === "ConfigMap").map((o) => o.metadata.name),
      ["sluice-config"],
    );
  });

  test("with migrations.enabled, the migration Job applies them from a hook ConfigMap made before it; the programs neither mount nor name it", async () => {
    const objects = await render({
      files: [valuesFile],
      set: ["migrations.enabled=true", "migrations.existingSecret=sluice-db-superuser"],
    });
    assert.deepEqual(objects.flatMap(validateObject), []);
    assert.equal(settings(objects).TARGETS_FILE, undefined);
    for (const program of PROGRAMS) {
      const pod = deploymentSpec(find(objects, "Deployment", `sluice-${program}`)).template.spec;
      assert.equal(
        (pod.volumes as Volume[]).some((v) => v.name === "targets"),
        false,
      );
    }
    const job = find(objects, "Job", "sluice-migrate");
    const pod = (job.spec as { template: { spec: PodSpec } }).template.spec;
    const path = pod.containers[0]?.env?.find((e) => e.name === "TARGETS_FILE")?.value;
    assert.ok(path, "the Job's TARGETS_FILE is set");
    const file = mountedFile(pod, path);
    assert.ok(file, `the Job mounts ${path}`);
    const configMap = find(objects, "ConfigMap", file.configMap);
    assert.equal(configMap.metadata.annotations?.["helm.sh/hook"], "pre-install,pre-upgrade");
    assert.ok(
      Number(configMap.metadata.annotations?.["helm.sh/hook-weight"]) <
        Number(job.metadata.annotations?.["helm.sh/hook-weight"]),
      "the ConfigMap is made before the Job",
    );
    assert.deepEqual(
      JSON.parse((configMap.data as Record<string, string>)[file.key] ?? ""),
      declared,
    );

    const existing = await render({
      set: [
        "migrations.enabled=true",
        "migrations.existingSecret=sluice-db-superuser",
        "targets.existingConfigMap=acme-targets",
      ],
    });
    const existingJob = find(existing, "Job", "sluice-migrate");
    const existingPod = (existingJob.spec as { template: { spec: PodSpec } }).template.spec;
    const existingPath = existingPod.containers[0]?.env?.find(
      (e) => e.name === "TARGETS_FILE",
    )?.value;
    assert.ok(existingPath);
    assert.deepEqual(mountedFile(existingPod, existingPath), {
      configMap: "acme-targets",
      key: "targets.json",
    });
  });

  test("conflicting or malformed settings are refused with a clear reason", async () => {
    const refused = async (set: string[], reason: RegExp) => {
      await assert.rejects(render({ files: [valuesFile], set }), (err: Error) => {
        assert.match(err.message, reason);
        return true;
      });
    };
    await refused(["targets.existingConfigMap=acme-targets"], /not both/);
    await refused(["config.TARGETS_FILE=/etc/mine.json"], /leave config\.TARGETS_FILE empty/);
    await refused(["targets.tenants.acme.People.table=people"], /People/);
    await refused(
      ["targets.tenants.acme.people=null", "targets.tenants.acme.other.table=t"],
      /columns/,
    );
  });
});
