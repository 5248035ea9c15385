import assert from "node:assert/strict";
import { test } from "node:test";
import {
  assessUploads,
  describeRecovered,
  describeStuck,
  formatDuration,
  likelyCause,
  type QueueSignals,
  type WatchedUpload,
} from "./stuck-uploads.ts";

const NOW = new Date("2026-11-28T12:00:00.000Z");
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000);
const WORKING: QueueSignals = { consumers: 2, deadLetters: 0 };

function upload(overrides: Partial<WatchedUpload> = {}): WatchedUpload {
  return {
    id: "3f1c0d3e-0000-4000-8000-000000000001",
    status: "processing",
    lastProgressAt: ago(10),
    batchesTotal: 100,
    batchesPublished: 100,
    batchesLanded: 40,
    stalled: false,
    ...overrides,
  };
}

test("an upload with no progress for the threshold is stuck, one moving within it is not", () => {
  const moving = upload({ id: "a", lastProgressAt: ago(119) });
  const still = upload({ id: "b", lastProgressAt: ago(120) });
  const { newlyStuck, stillStuck, recovered } = assessUploads([moving, still], WORKING, NOW, 120);
  assert.deepEqual(
    newlyStuck.map((s) => [s.upload.id, s.stuckForSeconds]),
    [["b", 120]],
  );
  assert.deepEqual(stillStuck, []);
  assert.deepEqual(recovered, []);
});

test("only queued and processing uploads can be stuck", () => {
  const statuses = [
    "received",
    "validating",
    "completed",
    "failed",
    "rejected",
    "cancelled",
  ] as const;
  const idle = statuses.map((status) => upload({ id: status, status, lastProgressAt: ago(3600) }));
  assert.deepEqual(assessUploads(idle, WORKING, NOW, 120).newlyStuck, []);
  const queued = upload({ status: "queued", batchesLanded: 0, lastProgressAt: ago(3600) });
  assert.equal(assessUploads([queued], WORKING, NOW, 120).newlyStuck.length, 1);
});

test("an upload already reported stays reported: one report per episode", () => {
  const reported = upload({ stalled: true, lastProgressAt: ago(600) });
  const { newlyStuck, stillStuck, recovered } = assessUploads([reported], WORKING, NOW, 120);
  assert.deepEqual(newlyStuck, []);
  assert.equal(stillStuck[0]?.stuckForSeconds, 600);
  assert.deepEqual(recovered, []);
});

test("a reported upload that moved again, or finished, has recovered", () => {
  const moved = upload({ id: "moved", stalled: true, lastProgressAt: ago(5) });
  const finished = upload({
    id: "finished",
    stalled: true,
    status: "completed",
    lastProgressAt: ago(600),
  });
  const failed = upload({
    id: "failed",
    stalled: true,
    status: "failed",
    lastProgressAt: ago(600),
  });
  const { newlyStuck, stillStuck, recovered } = assessUploads(
    [moved, finished, failed],
    WORKING,
    NOW,
    120,
  );
  assert.deepEqual(
    recovered.map((u) => u.id),
    ["moved", "finished", "failed"],
  );
  assert.deepEqual([...newlyStuck, ...stillStuck], []);
});

test("batches waiting in the queue with no consumer: no worker", () => {
  const waiting = upload({ batchesPublished: 100, batchesLanded: 40 });
  assert.equal(likelyCause(waiting, { consumers: 0, deadLetters: 0 }), "no_consumers");
  assert.equal(likelyCause(waiting, { consumers: 0, deadLetters: 3 }), "no_consumers");
});

test("batches waiting while workers consume: dead letters if there are any, else unknown", () => {
  const waiting = upload({ batchesPublished: 100, batchesLanded: 40 });
  assert.equal(likelyCause(waiting, { consumers: 3, deadLetters: 2 }), "dead_letters");
  assert.equal(likelyCause(waiting, { consumers: 3, deadLetters: 0 }), "unknown");
});

test("every published batch landed but not every batch was published: publishing stopped", () => {
  const starved = upload({ batchesTotal: 100, batchesPublished: 40, batchesLanded: 40 });
  assert.equal(likelyCause(starved, { consumers: 3, deadLetters: 0 }), "publishing_stopped");
  assert.equal(likelyCause(starved, { consumers: 0, deadLetters: 0 }), "publishing_stopped");
});

test("without RabbitMQ's answer the cause stays unknown rather than guessed", () => {
  const waiting = upload({ batchesPublished: 100, batchesLanded: 40 });
  assert.equal(likelyCause(waiting, { consumers: undefined, deadLetters: undefined }), "unknown");
});

test("the cause goes with each stuck upload", () => {
  const uploads = [
    upload({ id: "waiting", lastProgressAt: ago(300) }),
    upload({ id: "starved", batchesPublished: 40, batchesLanded: 40, lastProgressAt: ago(300) }),
  ];
  const { newlyStuck } = assessUploads(uploads, { consumers: 0, deadLetters: 0 }, NOW, 120);
  assert.deepEqual(
    newlyStuck.map((s) => [s.upload.id, s.cause]),
    [
      ["waiting", "no_consumers"],
      ["starved", "publishing_stopped"],
    ],
  );
});

test("durations read the way an operator says them", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(45.9), "45s");
  assert.equal(formatDuration(200), "3m 20s");
  assert.equal(formatDuration(7500), "2h 5m");
});

test("messages name the upload, how long, how far and the likely cause", () => {
  const stuck = assessUploads(
    [upload({ lastProgressAt: ago(200) })],
    { consumers: 0, deadLetters: 0 },
    NOW,
    120,
  ).newlyStuck[0];
  assert.ok(stuck);
  assert.equal(
    describeStuck(stuck),
    "Upload 3f1c0d3e-0000-4000-8000-000000000001 has made no progress for 3m 20s (40 of 100 batches landed, 100 published); likely cause: no worker consumes the batch queue",
  );
  assert.equal(
    describeRecovered(upload({ batchesLanded: 41 })),
    "Upload 3f1c0d3e-0000-4000-8000-000000000001 is moving again: processing (41 of 100 batches landed, 100 published)",
  );
});
