// Re-drive: a batch that dead-lettered goes back to the work queue with its attempts reset
// once its cause is fixed, its failed upload is reopened, and the upload completes with every
// row exactly once. Other uploads' dead letters stay where they are.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { deadLetterCount } from "./support/broker-queues.ts";
import { refusePoisonRows } from "./support/poison-rows.ts";
import { startProgram } from "./support/program.ts";
import {
  acceptedUpload,
  getJson,
  type InProcess,
  startInProcess,
  type TestEnv,
  testEnv,
  waitFor,
} from "./support/stack.ts";

const KEYS = { acme: "acme-40e1", globex: "globex-77b2" };
const auth = (tenant: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[tenant]}` });

let env: TestEnv;
let stack: InProcess;
before(async () => {
  env = await testEnv({
    API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}`,
    BATCH_SIZE: "2",
    MAX_ATTEMPTS: "2",
    RETRY_BASE_MS: "100",
  });
  stack = await startInProcess(env);
  // The database refuses rows whose id is listed, as a constraint or trigger would until
  // someone fixes the data or the schema.
  await env.sql.query(`
    create table poison (id text primary key);
    create function refuse_poison() returns trigger language plpgsql as $$
    begin
      if exists (select from poison where id = new.data ->> 'id') then
        raise exception 'row % is poison', new.row_number;
      end if;
      return new;
    end $$;
    create trigger refuse_poison before insert on upload_rows for each row execute function refuse_poison();`);
});
after(async () => {
  await stack?.stop();
  await env?.cleanup();
});

async function uploadFailing(tenant: keyof typeof KEYS, poison: string): Promise<string> {
  await env.sql.query("insert into poison values ($1)", [poison]);
  const accepted = await getJson(`${stack.url}/uploads`, {
    method: "POST",
    headers: { "content-type": "text/csv", ...auth(tenant) },
    body: `id,name\n${poison}-1,a\n${poison}-2,b\n${poison},c\n${poison}-4,d\n${poison}-5,e\n`,
  });
  assert.equal(accepted.status, 202);
  const id = accepted.body.id as string;
  await waitFor("the upload to fail with its other batches landed", async () => {
    const { body } = await getJson(`${stack.url}/uploads/${id}`, { headers: auth(tenant) });
    return body.status === "failed" && body.batches.landed === 2;
  });
  return id;
}

const deadLetters = () => deadLetterCount(env.config.rabbitmqUrl, env.config.namespace);

async function landedRows(id: string): Promise<string[]> {
  const { rows } = await env.sql.query(
    "select data ->> 'id' as id from upload_rows where upload_id = $1 order by row_number",
    [id],
  );
  return rows.map((r) => r.id);
}

const redrive = (tenant: keyof typeof KEYS, id: string) =>
  getJson(`${stack.url}/uploads/${id}/redrive`, { method: "POST", headers: auth(tenant) });

/** `npm run redrive` with `env`, to its exit; what it printed. */
async function redriveCli(env: Record<string, string>): Promise<string> {
  const cli = startProgram("src/api/redrive.main.ts", env, { inheritEnv: true });
  const { code } = await cli.exit;
  const output = cli.lines.join("\n");
  assert.equal(code, 0, output);
  return output;
}

test("POST /uploads/:id/redrive brings a fixed poison batch back; the upload completes, each row once", async () => {
  const first = await uploadFailing("acme", "p1");
  const second = await uploadFailing("globex", "p2");
  await waitFor("both batches to be dead-lettered", async () => (await deadLetters()) === 2);

  // Before the fix, a re-drive would only fail again; another tenant cannot re-drive it.
  assert.equal((await redrive("globex", first)).status, 404);
  await env.sql.query("delete from poison where id = 'p1'");

  const answer = await redrive("acme", first);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.redriven.batches, 1);
  assert.ok(["processing", "completed"].includes(answer.body.status));
  assert.equal(answer.body.error, null);

  const done = await waitFor("the re-driven upload to complete", async () => {
    const { body } = await getJson(`${stack.url}/uploads/${first}`, { headers: auth("acme") });
    return body.status === "completed" ? body : undefined;
  });
  assert.equal(done.rowsLanded, 5);
  assert.equal(done.batches.landed, 3);
  assert.deepEqual(await landedRows(first), ["p1-1", "p1-2", "p1", "p1-4", "p1-5"]);

  // The other upload's dead letter stayed, and that upload is still failed.
  assert.equal(await deadLetters(), 1);
  const other = await getJson(`${stack.url}/uploads/${second}`, { headers: auth("globex") });
  assert.equal(other.body.status, "failed");

  // A finished upload has nothing to re-drive.
  const again = await redrive("acme", first);
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, "Conflict");
});

test("npm run redrive moves every dead letter back and their uploads complete", async () => {
  const id = await uploadFailing("globex", "p3");
  await waitFor("the dead letters of both failed uploads", async () => (await deadLetters()) === 2);
  const { rows: failed } = await env.sql.query(
    "select id from uploads where status = 'failed' order by created_at",
  );
  assert.equal(failed.length, 2);
  await env.sql.query("delete from poison");

  const output = await redriveCli(env.env);
  assert.match(output, /re-drove 2 batch\(es\) of 2 upload\(s\); 0 dead letter\(s\) left/);

  for (const upload of failed) {
    const done = await waitFor(`upload ${upload.id} to complete`, async () => {
      const { rows } = await env.sql.query(
        "select status, rows_landed::int as rows from uploads where id = $1",
        [upload.id],
      );
      return rows[0].status === "completed" ? rows[0] : undefined;
    });
    assert.equal(done.rows, 5);
  }
  assert.deepEqual(await landedRows(id), ["p3-1", "p3-2", "p3", "p3-4", "p3-5"]);
  assert.equal(await deadLetters(), 0);
});

for (const by of ["POST /uploads/:id/redrive", "npm run redrive"] as const) {
  test(`an upload that fails while its publishing waits publishes the rest once re-driven (${by})`, async () => {
    // One batch in flight at most: publishing waits on batch 1, which dead-letters.
    const own = await testEnv({
      BATCH_SIZE: "2",
      MAX_ATTEMPTS: "2",
      RETRY_BASE_MS: "100",
      MAX_BATCHES_IN_FLIGHT_PER_UPLOAD: "1",
    });
    const api = await startInProcess(own);
    try {
      await refusePoisonRows(own.sql);
      const rows = ["poison", ...Array.from({ length: 9 }, (_, i) => String(i + 2))];
      const { id } = await acceptedUpload(api.url, `id\n${rows.join("\n")}\n`);
      const failed = await waitFor("the upload to fail", async () => {
        const { body } = await getJson(`${api.url}/uploads/${id}`);
        return body.status === "failed" ? body : undefined;
      });
      assert.equal(failed.batches.landed, 0);
      // Publishing stopped at the failure instead of waiting on it for good: its lease, renewed
      // while it runs, given up.
      await waitFor("publishing to end", async () => {
        const { rows: lease } = await own.sql.query(
          "select publishing_until <= now() as ended from uploads where id = $1",
          [id],
        );
        return lease[0].ended === true;
      });
      const { rows: published } = await own.sql.query(
        "select batches_published::int as n from uploads where id = $1",
        [id],
      );
      assert.equal(published[0].n, 1);

      await own.sql.query("drop trigger refuse_poison on upload_rows");
      if (by === "npm run redrive") {
        const output = await redriveCli(own.env);
        assert.match(output, /re-drove 1 batch\(es\) of 1 upload\(s\)/);
        assert.match(output, /publishing the rest of 1 upload\(s\)/);
      } else {
        const answer = await getJson(`${api.url}/uploads/${id}/redrive`, { method: "POST" });
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.equal(answer.body.redriven.batches, 1);
      }
      const done = await waitFor("the upload to complete", async () => {
        const { body } = await getJson(`${api.url}/uploads/${id}`);
        return body.status === "completed" ? body : undefined;
      });
      assert.equal(done.batches.published, 5);
      const { rows: landed } = await own.sql.query(
        "select data ->> 'id' as id from upload_rows where upload_id = $1 order by row_number",
        [id],
      );
      assert.deepEqual(
        landed.map((r) => r.id),
        rows,
      );
    } finally {
      await api.stop();
      await own.cleanup();
    }
  });
}

test("a purged upload's dead letters stay dead: a re-drive brings nothing back", async () => {
  const id = await uploadFailing("acme", "p4");
  await waitFor("its batch to be dead-lettered", async () => (await deadLetters()) === 1);
  const purged = await getJson(`${stack.url}/uploads/${id}/data`, {
    method: "DELETE",
    headers: auth("acme"),
  });
  assert.equal(purged.status, 200, JSON.stringify(purged.body));
  await env.sql.query("delete from poison");

  const answer = await redrive("acme", id);
  assert.equal(answer.status, 409);
  assert.equal(answer.body.error.code, "NothingToRedrive");
  assert.equal(await deadLetters(), 1);
  assert.deepEqual(await landedRows(id), []);
  const { body } = await getJson(`${stack.url}/uploads/${id}`, { headers: auth("acme") });
  assert.equal(body.status, "failed");
});
