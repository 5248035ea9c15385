import { homedir } from "node:os";
import { runMain } from "../core/main-runner.ts";
import { createMetrics } from "../core/metrics.ts";
import { brokerReadiness, startOpsServer } from "../core/ops-server.ts";
import { openRuntime } from "../core/runtime.ts";
import { startController } from "./controller.ts";
import { findKubeConfig } from "./kubernetes.ts";

runMain("controller", async ({ config, log, shutdown }) => {
  const runtime = await openRuntime(config, log);
  shutdown.add("close", "connections", runtime.close);
  const metrics = createMetrics("controller");
  const controller = startController(
    config,
    runtime,
    metrics,
    log,
    findKubeConfig(process.env, homedir()),
  );
  shutdown.add("drain", "controller", controller.stop);
  const ops = await startOpsServer(
    config.ports.controller,
    metrics.registry,
    brokerReadiness(runtime.broker),
  );
  shutdown.add("close", "ops server", ops.close);
  log.info({ port: config.ports.controller }, "controller running");
});
