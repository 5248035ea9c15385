import assert from "node:assert/strict";
import { test } from "node:test";
import type { UploadView } from "../../core/uploads/upload-view.ts";
import { estimateSecondsLeft, formatEvent, isNews, toProgressEvent } from "./progress-event.ts";

const QUEUED_AT = Date.parse("2026-11-28T10:00:00.000Z");

function view(overrides: Partial<UploadView> = {}): UploadView {
  return {
    id: "3f1c0d3e-0000-4000-8000-000000000001",
    tenant: "default",
    filename: "cities.csv",
    status: "processing",
    bytes: 1_000_000,
    sha256: null,
    encoding: "utf-8",
    delimiter: ",",
    columns: ["id"],
    rows: 100_000,
    rowsLanded: 25_000,
    rowErrors: 3,
    blankLines: 0,
    batches: { total: 100, published: 100, landed: 25 },
    error: null,
    stalled: false,
    stalledReason: null,
    createdAt: "2026-11-28T09:59:00.000Z",
    updatedAt: "2026-11-28T10:00:10.000Z",
    queuedAt: new Date(QUEUED_AT).toISOString(),
    completedAt: null,
    lastProgressAt: "2026-11-28T10:00:10.000Z",
    purgedAt: null,
    target: null,
    ...overrides,
  };
}

test("the time left follows the rate batches have landed at since the upload was queued", () => {
  // 25 batches in 10 s: the other 75 take 30 s more.
  assert.equal(estimateSecondsLeft(view(), QUEUED_AT + 10_000), 30);
  // A slowdown shows: still 25 after 20 s, so 60 s more.
  assert.equal(estimateSecondsLeft(view(), QUEUED_AT + 20_000), 60);
  // Rounded up, so that "0" only ever means done.
  assert.equal(
    estimateSecondsLeft(
      view({ batches: { total: 100, published: 100, landed: 99 } }),
      QUEUED_AT + 10_000,
    ),
    1,
  );
});

test("there is no estimate before the first batch lands, before the upload is queued, or when it will never finish", () => {
  assert.equal(
    estimateSecondsLeft(
      view({ batches: { total: 100, published: 10, landed: 0 }, rowsLanded: 0 }),
      QUEUED_AT + 5_000,
    ),
    null,
  );
  assert.equal(
    estimateSecondsLeft(
      view({
        status: "validating",
        queuedAt: null,
        batches: { total: null, published: 0, landed: 0 },
      }),
      QUEUED_AT,
    ),
    null,
  );
  assert.equal(estimateSecondsLeft(view({ status: "failed" }), QUEUED_AT + 10_000), null);
  assert.equal(estimateSecondsLeft(view({ status: "cancelled" }), QUEUED_AT + 10_000), null);
  assert.equal(estimateSecondsLeft(view(), QUEUED_AT), null);
});

test("a completed upload has nothing left", () => {
  assert.equal(
    estimateSecondsLeft(
      view({ status: "completed", batches: { total: 100, published: 100, landed: 100 } }),
      QUEUED_AT + 40_000,
    ),
    0,
  );
});

test("an event carries status, rows, batches, row errors, the stalled flag and the estimate", () => {
  assert.deepEqual(toProgressEvent(view({ stalled: true }), QUEUED_AT + 10_000), {
    status: "processing",
    rows: 100_000,
    rowsLanded: 25_000,
    rowErrors: 3,
    batches: { landed: 25, total: 100 },
    stalled: true,
    secondsLeft: 30,
  });
});

test("progress never goes back: an older view heard after a newer one is not news", () => {
  const at = QUEUED_AT + 10_000;
  const current = toProgressEvent(view(), at);
  assert.equal(isNews(current, undefined), true);
  assert.equal(
    isNews(
      toProgressEvent(view({ batches: { total: 100, published: 100, landed: 24 } }), at),
      current,
    ),
    false,
  );
  assert.equal(
    isNews(
      toProgressEvent(view({ batches: { total: 100, published: 100, landed: 26 } }), at),
      current,
    ),
    true,
  );
  assert.equal(isNews(toProgressEvent(view(), at + 1_000), current), false, "the same state again");
  assert.equal(isNews(toProgressEvent(view({ stalled: true }), at), current), true);

  const queued = toProgressEvent(
    view({ status: "queued", batches: { total: 100, published: 5, landed: 0 } }),
    at,
  );
  const validating = toProgressEvent(
    view({ status: "validating", batches: { total: null, published: 0, landed: 0 } }),
    at,
  );
  assert.equal(isNews(validating, queued), false);
  assert.equal(isNews(queued, validating), true);
  const cancelled = toProgressEvent(
    view({ status: "cancelled", batches: { total: 100, published: 100, landed: 20 } }),
    at,
  );
  assert.equal(isNews(cancelled, current), true, "a final status, whatever it counts");
  assert.equal(isNews(current, cancelled), false);
});

test("an event is one SSE message named progress, with the landed batches as its id", () => {
  const text = formatEvent(toProgressEvent(view(), QUEUED_AT + 10_000));
  const lines = text.split("\n");
  assert.equal(lines[0], "id: 25");
  assert.equal(lines[1], "event: progress");
  assert.ok(lines[2]?.startsWith("data: {"));
  assert.equal(JSON.parse((lines[2] ?? "").slice("data: ".length)).secondsLeft, 30);
  assert.ok(text.endsWith("\n\n"));
});
