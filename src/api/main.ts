import { runMain } from "../core/main-runner.ts";
import { createMetrics } from "../core/metrics.ts";
import { openRuntime } from "../core/runtime.ts";
import { createApi, listenApi, publishingGraceMs } from "./api.ts";
import { prepareUploadDir } from "./upload-intake.ts";

runMain("api", async ({ config, log, shutdown, faults }) => {
  await prepareUploadDir(config.uploadDir);
  const runtime = await openRuntime(config, log);
  shutdown.add("close", "connections", runtime.close);
  const api = createApi(config, runtime, createMetrics("api"), log, faults);
  const server = await listenApi(api, config.ports.api);
  shutdown.add("stop", "uploads", api.refuse);
  shutdown.add("stop", "progress streams", api.progress.close);
  // The server keeps answering while publishing finishes: readiness false, uploads 503.
  shutdown.add("drain", "publisher", () =>
    api.publisher.finish(publishingGraceMs(config.shutdownTimeoutMs)),
  );
  shutdown.add("drain", "http server", () => new Promise((resolve) => server.close(resolve)));
  shutdown.add("close", "parsing thread", api.parser.close);
  log.info({ port: config.ports.api, auth: config.apiKeys ? "on" : "off" }, "api listening");
  if (!config.apiKeys) log.warn("authentication is off: every request acts as the default tenant");
  const resumed = await api.publisher.resumeUnfinished();
  if (resumed > 0) log.info({ uploads: resumed }, "resumed publishing");
});
