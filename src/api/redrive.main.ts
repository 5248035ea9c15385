// `npm run redrive -- [--upload ID]`: moves dead-lettered batches (all, or one upload's) back
// to the work queue with their attempts reset, reopening their failed uploads, publishes the
// batches those uploads had not sent yet when they are stored here, and exits.
import { parseArgs } from "node:util";
import { findUpload } from "../core/db/uploads.repository.ts";
import { createMetrics } from "../core/metrics.ts";
import { runMain } from "../core/program/main-runner.ts";
import { openRuntime } from "../core/program/runtime.ts";
import { isUploadId } from "../core/uploads/upload-id.ts";
import { createPublishing } from "./api.ts";
import { redriveUploads } from "./publishing/redrive.ts";

runMain("redrive", async ({ config, log, shutdown }) => {
  const { values } = parseArgs({ options: { upload: { type: "string" } } });
  if (values.upload !== undefined && !isUploadId(values.upload)) {
    console.error("sluice redrive: --upload must be an upload id");
    process.exit(2);
  }
  const runtime = await openRuntime(config, log);
  shutdown.add("close", "connections", runtime.close);
  const { progress, publisher } = createPublishing(config, runtime, createMetrics("api"), log);
  shutdown.add("close", "progress", progress.close);
  shutdown.add("drain", "publishing", publisher.stop);
  const result = await redriveUploads(
    { ...runtime, namespace: config.namespace, publisher },
    values.upload,
  );
  let batches = 0;
  for (const [uploadId, moved] of result.moved) {
    batches += moved;
    log.info({ uploadId, batches: moved }, "dead-lettered batches re-driven");
  }
  console.log(
    `re-drove ${batches} batch(es) of ${result.moved.size} upload(s); ${result.left} dead letter(s) left in ${config.namespace}.batches.dead`,
  );
  // An upload that failed while its publishing waited has the rest stored by the api that
  // received it; published here when this is that api's UPLOAD_DIR.
  if (result.publishing.length > 0) {
    console.log(`publishing the rest of ${result.publishing.length} upload(s)`);
    await publisher.finish();
  }
  for (const uploadId of result.moved.keys()) {
    const upload = await findUpload(runtime.db, uploadId);
    if (upload?.batches_total != null && upload.batches_published < upload.batches_total) {
      console.log(
        `upload ${uploadId}: ${upload.batches_total - upload.batches_published} batch(es) not published; their api publishes them at its next start, or run this where its UPLOAD_DIR is`,
      );
    }
  }
  await shutdown.run("done");
  process.exit(0);
});
