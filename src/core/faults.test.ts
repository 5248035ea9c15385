import assert from "node:assert/strict";
import { test } from "node:test";
import { NO_FAULTS, parseFaults } from "./faults.ts";

test("no fault switch means no faults", () => {
  assert.equal(parseFaults(undefined, "development"), NO_FAULTS);
  assert.equal(parseFaults("", "test"), NO_FAULTS);
});

test("a fault switch is refused in production and when malformed", () => {
  assert.throws(() => parseFaults("after-commit:1", "production"), /production/);
  assert.throws(() => parseFaults("after-lunch:1", "test"), /point one of/);
  assert.throws(() => parseFaults("after-commit:0", "test"), /<point>:<n>/);
});

test("a fault point reached before its time does nothing", () => {
  const faults = parseFaults("after-commit:3", "test");
  faults.hit("after-commit");
  faults.hit("after-commit");
  faults.hit("after-s3-put");
});

test("an S3 body is passed through untouched unless mid-s3-put is chosen", () => {
  const body = Buffer.from("{}");
  assert.equal(NO_FAULTS.s3Body(body), body);
  assert.equal(parseFaults("after-commit:1", "test").s3Body(body), body);
  const faults = parseFaults("mid-s3-put:2", "test");
  assert.equal(faults.s3Body(body), body, "the first PUT is not the chosen one");
});

test("a fault its caller enacts is reached once, at its chosen time", () => {
  const faults = parseFaults("parsing-thread:2", "test");
  assert.deepEqual(
    [
      faults.reached("parsing-thread"),
      faults.reached("after-publish"),
      faults.reached("parsing-thread"),
      faults.reached("parsing-thread"),
    ],
    [false, false, true, false],
  );
  assert.equal(NO_FAULTS.reached("parsing-thread"), false);
});
