// `npm run redrive -- [--upload ID]`: moves dead-lettered batches (all, or one upload's) back
// to the work queue with their attempts reset, reopening their failed uploads, and exits.
import { parseArgs } from "node:util";
import { runMain } from "./main-runner.ts";
import { redrive } from "./redrive.ts";
import { openRuntime } from "./runtime.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

runMain("redrive", async ({ config, log, shutdown }) => {
  const { values } = parseArgs({ options: { upload: { type: "string" } } });
  if (values.upload !== undefined && !UUID.test(values.upload)) {
    console.error("sluice redrive: --upload must be an upload id");
    process.exit(2);
  }
  const runtime = await openRuntime(config, log);
  shutdown.add("close", "connections", runtime.close);
  const result = await redrive({ ...runtime, namespace: config.namespace }, values.upload);
  let batches = 0;
  for (const [uploadId, moved] of result.moved) {
    batches += moved;
    log.info({ uploadId, batches: moved }, "dead-lettered batches re-driven");
  }
  console.log(
    `re-drove ${batches} batch(es) of ${result.moved.size} upload(s); ${result.left} dead letter(s) left in ${config.namespace}.batches.dead`,
  );
  await shutdown.run("done");
  process.exit(0);
});
