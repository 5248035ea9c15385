// Sluice's pods on the local cluster, from the image, installed with helm into a namespace
// enforcing the restricted standard, with PostgreSQL, Redis, RabbitMQ and S3 outside the
// cluster behind Services of the namespace; then an upload through the api's Service.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { waitFor } from "../support/stack.ts";
import { CHART, createNamespace, deleteNamespace, kubectl, kubectlJson } from "./cluster.ts";
import {
  apiUrl,
  installSluice,
  missingImage,
  type Outside,
  PROGRAMS,
  podsOf,
  rolledOut,
  servicesOutside,
  uploadLands,
} from "./sluice-release.ts";

const ROWS = 100_000;

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

const skip = await missingImage();

describe("Sluice's pods", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  const ns = () => ["--namespace", namespace];
  before(async () => {
    namespace = await createNamespace("sluice-pods");
    outside = await servicesOutside(namespace);
  });
  after(async () => {
    await deleteNamespace(namespace);
    await outside?.close();
  });

  const pods = (program: (typeof PROGRAMS)[number]) => podsOf(namespace, program);
  const exec = (pod: string, script: string) =>
    kubectl([...ns(), "exec", pod, "--", "node", "-e", script]);

  test("every pod Ready under the restricted standard", async (t) => {
    const started = Date.now();
    await installSluice(namespace, outside);
    for (const program of PROGRAMS) await rolledOut(namespace, program);
    const ready = [];
    for (const program of PROGRAMS) {
      for (const pod of await pods(program)) {
        const conditions = pod.status.conditions as Array<{ type: string; status: string }>;
        assert.ok(
          conditions.some((c) => c.type === "Ready" && c.status === "True"),
          pod.metadata.name,
        );
        ready.push(program);
      }
    }
    assert.deepEqual(ready, ["api", "api", "worker", "worker", "controller"]);
    t.diagnostic(`${ready.length} pods Ready ${seconds(started)} after helm install (${CHART})`);
  });

  test("each program runs as UID 1000 on a read-only root filesystem", async (t) => {
    const seen = [];
    for (const program of PROGRAMS) {
      const [pod] = await pods(program);
      const out = await exec(
        pod.metadata.name,
        "let code='written';try{require('fs').writeFileSync('/probe','x')}catch(e){code=e.code}console.log(process.getuid(),process.getgid(),code)",
      );
      assert.equal(out.trim(), "1000 1000 EROFS", program);
      seen.push(`${program}: ${out.trim()}`);
    }
    t.diagnostic(seen.join(", "));
  });

  test("cluster DNS resolves rabbitmq.<namespace>.svc to its Service", async (t) => {
    const [pod] = await pods("api");
    const name = `rabbitmq.${namespace}.svc`;
    const address = (
      await exec(
        pod.metadata.name,
        `require('dns').lookup('${name}',(e,a)=>{if(e)throw e;console.log(a)})`,
      )
    ).trim();
    const service = await kubectlJson([...ns(), "get", "service", "rabbitmq"]);
    assert.equal(address, service.spec.clusterIP);
    t.diagnostic(`${name} -> ${address}`);
  });

  test("the controller's pod logs in with its projected token and holds its Lease", async (t) => {
    const [pod] = await pods("controller");
    const lease = await waitFor("the controller's Lease", async () => {
      const found = await kubectlJson([...ns(), "get", "leases"]);
      return found.items.find((l: any) => l.spec.holderIdentity === pod.metadata.name);
    });
    assert.equal(lease.metadata.name, `${outside.env.config.namespace}-controller`);
    t.diagnostic(`Lease ${lease.metadata.name} held by ${pod.metadata.name}`);
  });

  test(`an upload of ${ROWS.toLocaleString("en")} rows through the api's Service lands exactly once`, async (t) => {
    const url = await apiUrl(namespace);
    const started = Date.now();
    await uploadLands(url, outside, ROWS);
    t.diagnostic(`${ROWS} rows, 0 lost, 0 duplicated, completed in ${seconds(started)} via ${url}`);
  });
});
