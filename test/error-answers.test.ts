// Each error code is answered with the status README's error tables and the OpenAPI
// description give it, and every code the api may raise is answered and documented.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ERROR_CODES } from "../src/api/http/app-error.ts";
import { ERROR_ANSWERS } from "../src/api/http/error-answers.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const openapi = JSON.parse(
  readFileSync(new URL("../src/api/http/openapi.json", import.meta.url), "utf8"),
);

/** "415 `NotCsv`", "recorded as 408 `IdleTimeout`", "422 `MissingColumns`, `UnmappedColumns`". */
function readmePairs(): Array<[string, number, string]> {
  return [...readme.matchAll(/\b([1-5]\d\d) ((?:`[A-Z][A-Za-z]+`(?:, )?)+)/g)].flatMap(
    ([, status, codes]) =>
      [...(codes ?? "").matchAll(/`([A-Za-z]+)`/g)].map(
        ([, code]) => [code as string, Number(status), "README.md"] as [string, number, string],
      ),
  );
}

function openapiPairs(): Array<[string, number, string]> {
  const resolve = (node: any): any =>
    node?.$ref
      ? node.$ref
          .split("/")
          .slice(1)
          .reduce((at: any, key: string) => at[key], openapi)
      : node;
  const codes = (node: any, found: string[] = []): string[] => {
    const here = resolve(node);
    if (here === null || typeof here !== "object") return found;
    const listed = here.properties?.code?.enum;
    if (Array.isArray(listed)) found.push(...listed);
    for (const value of Object.values(here)) codes(value, found);
    return found;
  };
  const pairs: Array<[string, number, string]> = [];
  for (const [path, item] of Object.entries(openapi.paths as Record<string, any>)) {
    for (const [method, operation] of Object.entries(item)) {
      if (method === "parameters") continue;
      for (const [status, response] of Object.entries((operation as any).responses)) {
        const schema = resolve(response).content?.["application/json"]?.schema;
        for (const code of codes(schema)) {
          pairs.push([code, Number(status), `openapi.json ${method.toUpperCase()} ${path}`]);
        }
      }
    }
  }
  return pairs;
}

test("each code is answered with the status README and the OpenAPI description give it", () => {
  const pairs = [...readmePairs(), ...openapiPairs()];
  assert.ok(pairs.length > 50, "the error tables are found");
  const differ = pairs.flatMap(([code, status, where]) => {
    const answered = (ERROR_ANSWERS as Record<string, { status: number } | undefined>)[code]
      ?.status;
    return answered === status ? [] : [`${where}: ${status} ${code}, answered ${answered}`];
  });
  assert.deepEqual(differ, []);
});

test("every code the api may raise has an answer and is documented", () => {
  assert.deepEqual(Object.keys(ERROR_ANSWERS).sort(), [...ERROR_CODES].sort());
  const documented = new Set([...readmePairs(), ...openapiPairs()].map(([code]) => code));
  assert.deepEqual(
    ERROR_CODES.filter((code) => !documented.has(code)),
    [],
  );
});
