// What the programs say at start: whether authentication is on, how production refuses to run
// without it, and which service is out of reach or never answers.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import pg from "pg";
import { startProgram } from "./support/program.ts";
import { type TestEnv, testEnv } from "./support/stack.ts";
import { startBlackHole } from "./support/tcp-proxy.ts";

let env: TestEnv;
before(async () => {
  env = await testEnv();
});
after(async () => {
  await env?.cleanup();
});

const STACK_FRAME = /^\s+at .+[(:]|\.ts:\d+/m;

test("production without API_KEYS: the api exits 1 naming API_KEYS, without a stack trace", async () => {
  // An empty folder as working directory: no .env can supply the keys.
  const cwd = await mkdtemp(join(tmpdir(), "sluice-start-"));
  try {
    const api = startProgram(
      "src/api/main.ts",
      {
        NODE_ENV: "production",
        AWS_ACCESS_KEY_ID: "AKIA",
        AWS_SECRET_ACCESS_KEY: "secret",
      },
      { cwd },
    );
    const { code } = await api.exit;
    assert.equal(code, 1);
    const output = [...api.stderr, ...api.stdout].join("\n");
    assert.match(output, /API_KEYS is missing/);
    assert.match(output, /AUTH_DISABLED=true/);
    assert.doesNotMatch(output, STACK_FRAME);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});

for (const file of ["src/api/main.ts", "src/main.ts"]) {
  test(`${file} without API_KEYS says at start that authentication is off`, async () => {
    const program = startProgram(file, { ...env.env, LOG_LEVEL: "info", API_KEYS: "" });
    try {
      const warning = JSON.parse(
        await program.line("the authentication warning", (line) =>
          line.includes("authentication is off"),
        ),
      );
      assert.equal(warning.level, "warn");
      assert.match(warning.msg, /every request acts as the default tenant/);
      const started = JSON.parse(
        await program.line("the start line", (line) => /"auth":"off"/.test(line)),
      );
      assert.equal(started.level, "info");
    } finally {
      await program.stop();
    }
  });

  test(`${file} with API_KEYS says authentication is on, and never prints a key`, async () => {
    const program = startProgram(file, {
      ...env.env,
      LOG_LEVEL: "info",
      API_KEYS: "acme:sekr1t-acme,globex:sekr1t-globex",
    });
    try {
      await program.line("the start line", (line) => /"auth":"on"/.test(line));
    } finally {
      await program.stop();
    }
    assert.ok(!program.stdout.some((line) => line.includes("authentication is off")));
    assert.doesNotMatch([...program.stdout, ...program.stderr].join("\n"), /sekr1t/);
  });
}

for (const [service, variable, url] of [
  ["PostgreSQL", "DATABASE_URL", "postgres://postgres@127.0.0.1:1/sluice"],
  ["Redis", "REDIS_URL", "redis://127.0.0.1:1"],
  ["RabbitMQ", "RABBITMQ_URL", "amqp://guest:secret-password@127.0.0.1:1"],
] as const) {
  test(`${service} out of reach at start: the worker says which, where and how to start it`, async () => {
    const worker = startProgram("src/worker/main.ts", { ...env.env, [variable]: url });
    const { code } = await worker.exit;
    assert.equal(code, 1);
    const output = [...worker.stderr, ...worker.stdout].join("\n");
    const shown = url.replace("secret-password", "***");
    assert.ok(output.includes(`${service} is not reachable at ${shown}`), output);
    assert.match(output, /start it with/);
    assert.doesNotMatch(output, /secret-password/, "no password in the message");
    assert.doesNotMatch(output, STACK_FRAME);
  });
}

// A service that accepts the connection and then says nothing: the program must not wait
// for it forever, silently. The worker meets each; every program in one process (npm start)
// meets the two whose silence once held it for minutes.
const SILENT = {
  PostgreSQL: ["DATABASE_URL", "postgres://postgres:secret-password@127.0.0.1:0/sluice"],
  Redis: ["REDIS_URL", "redis://:secret-password@127.0.0.1:0"],
  RabbitMQ: ["RABBITMQ_URL", "amqp://guest:secret-password@127.0.0.1:0"],
  S3: ["AWS_ENDPOINT", "http://127.0.0.1:0/"],
} as const;
// What each program connects to as it starts: the api and the controller reach S3 only when
// they purge, so they start without it.
for (const [who, file, services] of [
  ["the worker", "src/worker/main.ts", ["PostgreSQL", "Redis", "RabbitMQ", "S3"]],
  ["the api", "src/api/main.ts", ["PostgreSQL", "Redis", "RabbitMQ"]],
  ["the controller", "src/controller/main.ts", ["PostgreSQL", "Redis", "RabbitMQ"]],
  ["every program in one process", "src/main.ts", ["PostgreSQL", "Redis"]],
] as const) {
  for (const service of services) {
    const [variable, url] = SILENT[service];
    test(`${service} that never answers at start: ${who} says which, where and after how long, and exits`, async () => {
      await silentAtStart(file, service, variable, url);
    });
  }
}

/** Starts `file` with `service` taking the connection and saying nothing, to its exit. */
async function silentAtStart(
  file: string,
  service: keyof typeof SILENT,
  variable: string,
  url: string,
): Promise<void> {
  const hole = await startBlackHole();
  try {
    const silent = hole.at(url);
    const program = startProgram(file, {
      ...env.env,
      [variable]: silent,
      CONNECT_TIMEOUT_MS: "3000",
    });
    const { code } = await program.exit;
    const output = [...program.stderr, ...program.stdout].join("\n");
    assert.equal(code, 1, output);
    const shown = silent.replace("secret-password", "***");
    assert.ok(output.includes(`${service} at ${shown} did not answer within 3000 ms`), output);
    assert.doesNotMatch(output, /secret-password/, "no password in the message");
    assert.doesNotMatch(output, STACK_FRAME);
  } finally {
    await hole.close();
  }
}

for (const [program, started] of [
  ["worker", "worker running"],
  ["controller", "controller running"],
] as const) {
  test(`production without API_KEYS: the ${program}, which serves no uploads, starts`, async () => {
    // Production creates neither the database nor the bucket.
    const admin = new pg.Client({
      connectionString: "postgres://postgres@127.0.0.1:5432/postgres",
    });
    await admin.connect();
    const database = new URL(env.env.DATABASE_URL as string).pathname.slice(1);
    await admin.query(`create database "${database}"`).catch((err: { code?: string }) => {
      if (err.code !== "42P04") throw err;
    });
    await admin.end();
    await env.s3
      .send(new CreateBucketCommand({ Bucket: env.config.s3.bucket }))
      .catch((err: { name?: string }) => {
        if (!/^BucketAlready/.test(err.name ?? "")) throw err;
      });
    const running = startProgram(`src/${program}/main.ts`, {
      ...env.env,
      NODE_ENV: "production",
      LOG_LEVEL: "info",
      API_KEYS: "",
    });
    try {
      await running.line(`"${started}"`, (line) => line.includes(`"msg":"${started}"`));
    } finally {
      await running.stop();
    }
    assert.doesNotMatch([...running.stdout, ...running.stderr].join("\n"), /API_KEYS/);
  });
}
