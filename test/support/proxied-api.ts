// An api in the test's process whose connections to PostgreSQL, Redis or RabbitMQ go through
// proxies the test cuts or stalls (tcp-proxy.ts), the services staying up for every other test.
import { loadConfig } from "../../src/core/config.ts";
import { type InProcess, startInProcess, type TestEnv } from "./stack.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

export type ProxiedService = "PostgreSQL" | "Redis" | "RabbitMQ";

/** The variable that names each service, and its address when the test's environment has none. */
const SERVICES: Record<ProxiedService, { variable: string; url?: string }> = {
  PostgreSQL: { variable: "DATABASE_URL" },
  Redis: { variable: "REDIS_URL", url: "redis://127.0.0.1:6379" },
  RabbitMQ: { variable: "RABBITMQ_URL", url: "amqp://guest:guest@127.0.0.1:5672" },
};

export type ProxiedApi<S extends ProxiedService> = InProcess &
  Readonly<{
    /** The proxy in front of each service named; the api's stop closes them too. */
    proxies: Readonly<Record<S, TcpProxy>>;
  }>;

/**
 * The api alone (no worker), its connections to `services` through a proxy each. `vars` are
 * set over the test's environment: given as a function, it gets the proxied URLs to amend.
 */
export async function startProxiedApi<S extends ProxiedService>(
  env: TestEnv,
  services: readonly S[],
  vars:
    | Record<string, string>
    | ((proxied: Readonly<Record<string, string>>) => Record<string, string>) = {},
): Promise<ProxiedApi<S>> {
  const proxies = {} as Record<S, TcpProxy>;
  const proxied: Record<string, string> = {};
  const close = () => Promise.all(Object.values<TcpProxy>(proxies).map((proxy) => proxy.close()));
  try {
    for (const service of services) {
      const { variable, url: fallback } = SERVICES[service];
      const url = new URL(env.env[variable] ?? (fallback as string));
      proxies[service] = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
      proxied[variable] = proxies[service].via(url.href);
    }
    const config = loadConfig({
      ...env.env,
      ...proxied,
      ...(typeof vars === "function" ? vars(proxied) : vars),
    });
    const api = await startInProcess({ ...env, config }, { worker: false });
    return {
      ...api,
      proxies,
      async stop() {
        await api.stop();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
