import assert from "node:assert/strict";
import { test } from "node:test";
import type { AppError } from "./app-error.ts";
import { createAuthenticator, OPEN_TENANT } from "./auth.ts";

test("without keys every request belongs to the open tenant", () => {
  assert.equal(createAuthenticator(undefined)(undefined), OPEN_TENANT);
});

test("a bearer key maps to its tenant; a missing or wrong key is 401, the wrong one saying invalid_token", () => {
  const authenticate = createAuthenticator(
    new Map([
      ["k-alpha", "alpha"],
      ["k-beta", "beta"],
    ]),
  );
  assert.equal(authenticate("Bearer k-beta"), "beta");
  assert.equal(authenticate("bearer k-alpha"), "alpha");
  assert.throws(
    () => authenticate(undefined),
    (err: AppError) => err.code === "Unauthorized",
  );
  assert.throws(
    () => authenticate("Basic abc"),
    (err: AppError) => err.code === "Unauthorized",
  );
  assert.throws(
    () => authenticate("Bearer k-alph"),
    (err: AppError) =>
      err.code === "Unauthorized" &&
      err.headers["www-authenticate"]?.includes('error="invalid_token"') === true,
  );
});
