// A purge whose S3 endpoint keeps the connection open but stops answering: the api answers
// 503 naming S3 rather than holding the request, keeps the purge recorded, and finishes it
// when asked again once S3 answers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../src/core/config.ts";
import {
  apiForTests,
  callApi,
  listBatchObjects,
  startInProcess,
  waitFor,
} from "./support/stack.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

let s3: TcpProxy;
/** The api and a worker, their S3 requests through a proxy the test stalls; its stop closes it. */
const stack = apiForTests({ BATCH_SIZE: "2" }, async (env) => {
  const endpoint = env.env.AWS_ENDPOINT;
  assert.ok(endpoint);
  const { hostname, port } = new URL(endpoint);
  const proxy = await startTcpProxy({ host: hostname, port: Number(port) });
  s3 = proxy;
  const config = loadConfig({
    ...env.env,
    AWS_ENDPOINT: proxy.via(endpoint),
    CONNECT_TIMEOUT_MS: "1000",
    COMMAND_TIMEOUT_MS: "1000",
  });
  const api = await startInProcess({ ...env, config }).catch(async (err) => {
    await proxy.close();
    throw err;
  });
  return {
    ...api,
    async stop() {
      await api.stop();
      await proxy.close();
    },
  };
});

const call = (method: string, path: string, body?: string) =>
  callApi(stack.api.url, method, path, body);

test("a purge while S3 stops answering is 503 naming S3; asked again once it answers, it finishes", async () => {
  const accepted = await call("POST", "/uploads", "id,name\n1,a\n2,b\n3,c\n4,d\n");
  assert.equal(accepted.status, 202, accepted.text);
  const id = accepted.body.id as string;
  await waitFor("the upload to complete", async () => {
    return (await call("GET", `/uploads/${id}`)).body.status === "completed";
  });
  assert.equal((await listBatchObjects(stack.env, id)).length, 2);

  s3.stall();
  const stalled = await call("DELETE", `/uploads/${id}/data`);
  assert.equal(stalled.status, 503, stalled.text);
  assert.equal(stalled.body.error.code, "ServiceUnavailable", stalled.text);
  assert.equal(stalled.body.error.details?.service, "S3", stalled.text);
  assert.equal(stalled.body.error.message, "S3 did not answer in time; retry", stalled.text);
  assert.equal(stalled.headers.get("retry-after"), "5");
  assert.doesNotMatch(stalled.text, /127\.0\.0\.1/, "no address");
  // Not purged yet: its objects are still there.
  assert.equal((await call("GET", `/uploads/${id}`)).body.purgedAt, null);
  assert.equal((await listBatchObjects(stack.env, id)).length, 2);

  await s3.restore();
  const purged = await call("DELETE", `/uploads/${id}/data`);
  assert.equal(purged.status, 200, purged.text);
  assert.ok(purged.body.purgedAt, purged.text);
  assert.deepEqual(await listBatchObjects(stack.env, id), []);
});
