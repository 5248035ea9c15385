// Targets declared with the chart (ci/targets-values.yaml): the ConfigMap it makes reaches
// the pods, which apply it as they migrate at start, so that the tenant finds the target
// through the api and an upload into it lands typed rows in the tenant's own table.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getJson, waitFor } from "../support/stack.ts";
import { CHART, createNamespace, deleteNamespace } from "./cluster.ts";
import {
  API_KEY,
  apiUrl,
  installSluice,
  missingImage,
  type Outside,
  PROGRAMS,
  postUpload,
  rolledOut,
  servicesOutside,
} from "./sluice-release.ts";

const skip = await missingImage();
const auth = { authorization: `Bearer ${API_KEY}` };

describe("Targets from the chart", { skip }, () => {
  let namespace: string;
  let outside: Outside;
  let url: string;
  before(async () => {
    namespace = await createNamespace("sluice-targets");
    outside = await servicesOutside(namespace);
    // The values file's tenant, acme, is the one the check's key belongs to.
    await installSluice(namespace, outside, {
      valuesFiles: [join(CHART, "ci", "targets-values.yaml")],
    });
    for (const program of PROGRAMS) await rolledOut(namespace, program);
    url = await apiUrl(namespace);
  });
  after(async () => {
    await deleteNamespace(namespace);
    await outside?.close();
  });

  test("a target of targets.tenants is the tenant's through the api, as the values declare it", async (t) => {
    const { status, body } = await getJson(`${url}/targets/people`, { headers: auth });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.table, "people");
    assert.equal(body.mode, "upsert");
    assert.deepEqual(body.key, ["id"]);
    assert.deepEqual(
      body.columns.map((c: { name: string; type: string }) => `${c.name}:${c.type}`),
      ["id:bigint", "zip:text", "born:date", "score:numeric", "active:boolean"],
    );
    t.diagnostic(`GET /targets/people: 200, version ${body.version}, table ${body.table}`);
  });

  test("an upload into it lands typed rows in the tenant's table and lists the bad value", async (t) => {
    const csv = [
      "id,Zip code,born,score,active,notes",
      "1,01234,02/01/1990,1.5,true,kept out",
      "2,00042,31/12/2000,,false,",
      "3,99999,31/02/2000,2,true,no such day",
    ].join("\n");
    const accepted = await postUpload(url, `${csv}\n`, "?target=people");
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const id = accepted.body.id as string;
    const done = await waitFor(
      `upload ${id} to end`,
      async () => {
        const view = await getJson(`${url}/uploads/${id}`, { headers: auth });
        return ["completed", "failed"].includes(view.body.status) && view.body;
      },
      120_000,
    );
    assert.equal(done.status, "completed", JSON.stringify(done));
    const { rows } = await outside.env.sql.query(
      "select id::int, zip, born::text, score::text, active from tenant_acme.people order by id",
    );
    assert.deepEqual(rows, [
      { id: 1, zip: "01234", born: "1990-01-02", score: "1.5", active: true },
      { id: 2, zip: "00042", born: "2000-12-31", score: "0", active: false },
    ]);
    const errors = await fetch(`${url}/uploads/${id}/errors`, { headers: auth });
    const lines = (await errors.text()).trimEnd().split("\n");
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[1] as string, /^3,4,InvalidValue,.*born/);
    t.diagnostic(
      `2 typed rows in tenant_acme.people, 1 row error: ${lines[1]} (upload ${id}, via ${url})`,
    );
  });
});
