import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CONFIG_VARIABLES, ConfigError, loadConfig } from "./config.ts";

const PRODUCTION = {
  NODE_ENV: "production",
  AWS_ACCESS_KEY_ID: "AKIA",
  AWS_SECRET_ACCESS_KEY: "secret",
};

function problemsOf(source: Record<string, string>): string[] {
  try {
    loadConfig(source);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^Invalid environment: /);
    return err.message.replace("Invalid environment: ", "").split("; ");
  }
  assert.fail("the configuration was accepted");
}

test("development without API_KEYS runs with authentication off", () => {
  assert.equal(loadConfig({}).apiKeys, undefined);
  assert.equal(loadConfig({ NODE_ENV: "test" }).apiKeys, undefined);
});

test("production without API_KEYS refuses to start, naming API_KEYS", () => {
  assert.deepEqual(problemsOf(PRODUCTION), [
    "API_KEYS is missing (set AUTH_DISABLED=true to run without authentication)",
  ]);
});

test("production runs without keys only when AUTH_DISABLED=true says so", () => {
  assert.equal(loadConfig({ ...PRODUCTION, AUTH_DISABLED: "true" }).apiKeys, undefined);
  assert.deepEqual(problemsOf({ ...PRODUCTION, AUTH_DISABLED: "false" }), [
    "API_KEYS is missing (set AUTH_DISABLED=true to run without authentication)",
  ]);
});

test("API_KEYS maps each key to its tenant", () => {
  const config = loadConfig({ ...PRODUCTION, API_KEYS: " acme:k1, globex:k2 ,acme:k3 " });
  assert.deepEqual(
    [...(config.apiKeys ?? [])],
    [
      ["k1", "acme"],
      ["k2", "globex"],
      ["k3", "acme"],
    ],
  );
  // A key may itself contain a colon; the tenant ends at the first one.
  assert.equal(loadConfig({ API_KEYS: "acme:a:b" }).apiKeys?.get("a:b"), "acme");
});

test("malformed API_KEYS are reported, not read as keys", () => {
  for (const value of ["acme", ":key", "acme:", ",", "acme:k1,globex"]) {
    assert.deepEqual(problemsOf({ API_KEYS: value }), [
      "API_KEYS must be a comma-separated list of tenant:key pairs",
    ]);
  }
});

test("one key given to two tenants is refused", () => {
  assert.deepEqual(problemsOf({ API_KEYS: "acme:shared,globex:shared" }), [
    "API_KEYS gives the same key to more than one tenant",
  ]);
});

test("every problem is reported together, the rules across variables included", () => {
  assert.deepEqual(
    problemsOf({
      ...PRODUCTION,
      AWS_SECRET_ACCESS_KEY: "",
      RABBITMQ_URL: "http://rabbit",
      BATCH_SIZE: "0",
      MAX_CONCURRENT_UPLOADS: "many",
    }),
    [
      "BATCH_SIZE must be a positive integer",
      "MAX_CONCURRENT_UPLOADS must be a positive integer",
      "RABBITMQ_URL must be a URL starting with amqp:// or amqps://",
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together",
      "API_KEYS is missing (set AUTH_DISABLED=true to run without authentication)",
    ],
  );
});

test("an invalid AUTH_DISABLED is reported as such, not as a missing API_KEYS", () => {
  assert.deepEqual(problemsOf({ ...PRODUCTION, AUTH_DISABLED: "yes" }), [
    "AUTH_DISABLED must be true or false",
  ]);
});

test("upload limits default to 10 active uploads per tenant, 32 bodies at once, idle for 60 s", () => {
  assert.equal(loadConfig({}).limits.maxActiveUploadsPerTenant, 10);
  assert.equal(loadConfig({}).limits.maxConcurrentUploads, 32);
  assert.equal(loadConfig({}).limits.uploadIdleTimeoutMs, 60_000);
  const config = loadConfig({ MAX_ACTIVE_UPLOADS_PER_TENANT: "3", MAX_CONCURRENT_UPLOADS: "4" });
  assert.equal(config.limits.maxActiveUploadsPerTenant, 3);
  assert.equal(config.limits.maxConcurrentUploads, 4);
  assert.deepEqual(problemsOf({ MAX_ACTIVE_UPLOADS_PER_TENANT: "-1" }), [
    "MAX_ACTIVE_UPLOADS_PER_TENANT must be a positive integer",
  ]);
});

test("a form has 30 s to reach its file part; an api keeps 256 progress streams open", () => {
  assert.equal(loadConfig({}).limits.uploadFormTimeoutMs, 30_000);
  assert.equal(loadConfig({}).limits.maxProgressStreams, 256);
  const config = loadConfig({ UPLOAD_FORM_TIMEOUT_MS: "500", MAX_PROGRESS_STREAMS: "2" });
  assert.equal(config.limits.uploadFormTimeoutMs, 500);
  assert.equal(config.limits.maxProgressStreams, 2);
  assert.deepEqual(problemsOf({ MAX_PROGRESS_STREAMS: "0" }), [
    "MAX_PROGRESS_STREAMS must be a positive integer",
  ]);
});

test("the configuration cannot be changed once read", () => {
  const config = loadConfig({});
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.limits));
});

test(".env.example lists every variable, each with a value the configuration accepts", () => {
  const text = readFileSync(new URL("../../.env.example", import.meta.url), "utf8");
  const listed = [...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map(([, name, value]) => [
    name as string,
    value as string,
  ]);
  assert.deepEqual(listed.map(([name]) => name).sort(), [...CONFIG_VARIABLES].sort());
  assert.doesNotThrow(() => loadConfig(Object.fromEntries(listed)));
});

test("programs that serve no uploads run in production without API_KEYS", () => {
  assert.equal(loadConfig(PRODUCTION, { needsApiKeys: false }).apiKeys, undefined);
  const keys = loadConfig({ ...PRODUCTION, API_KEYS: "acme:k1" }, { needsApiKeys: false });
  assert.equal(keys.apiKeys?.get("k1"), "acme");
});

test("a missing bucket is made outside production, and in production only with CREATE_BUCKET=true", () => {
  const withKeys = { ...PRODUCTION, API_KEYS: "acme:k3y" };
  assert.equal(loadConfig({}).s3.createBucket, true);
  assert.equal(loadConfig({ CREATE_BUCKET: "false" }).s3.createBucket, false);
  assert.equal(loadConfig(withKeys).s3.createBucket, false);
  assert.equal(loadConfig({ ...withKeys, CREATE_BUCKET: "true" }).s3.createBucket, true);
  assert.deepEqual(problemsOf({ CREATE_BUCKET: "yes" }), ["CREATE_BUCKET must be true or false"]);
});
