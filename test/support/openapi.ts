// Checks real answers of the api against its OpenAPI description (src/api/http/openapi.json):
// the status is documented for the route, the headers it requires are there and match, the
// content type is one it lists, and the body validates against its schema.
import type Router from "@koa/router";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type Koa from "koa";
import { OPEN_PATHS } from "../../src/api/http/app.ts";
import spec from "../../src/api/http/openapi.json" with { type: "json" };
import { WEB_ROUTES } from "../../src/api/http/web.routes.ts";
import { readSse } from "../../src/cli/sse.ts";

export { spec };

const DOCUMENT = "openapi.json";
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats.default(ajv);
// The document's own keys: not JSON Schema, but where the schemas' $refs point into.
ajv.addVocabulary(["openapi", "info", "tags", "paths", "components"]);
ajv.addSchema({ $id: DOCUMENT, ...spec });

const pointer = (...parts: string[]) =>
  parts.map((p) => `/${p.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");

function validatorAt(path: string) {
  return ajv.compile({ $ref: `${DOCUMENT}#${path}` });
}

type Json = Record<string, any>;

/** Follows a $ref of the document (to components/responses, headers, parameters). */
function resolve(node: Json, at: string): { node: Json; at: string } {
  const target = node.$ref as string | undefined;
  if (target === undefined) return { node, at };
  const parts = target.replace(/^#\//, "").split("/");
  let found: any = spec;
  for (const part of parts) found = found[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  return resolve(found, target.slice(1));
}

/** Every route the description lists, as "METHOD /path/{param}". */
export function describedRoutes(): string[] {
  const routes: string[] = [];
  for (const [path, item] of Object.entries(spec.paths as Json)) {
    for (const method of METHODS) if (item[method]) routes.push(`${method.toUpperCase()} ${path}`);
  }
  return routes.sort();
}

/**
 * Every route the app serves: the uploads router's layers (HEAD comes with GET) and the
 * paths app.ts answers itself, which answer GET only.
 */
export function servedRoutes(app: Koa): string[] {
  const routes = new Set<string>();
  for (const middleware of app.middleware) {
    const router = (middleware as { router?: Router }).router;
    for (const layer of router?.stack ?? []) {
      // The web page's files are not the api the description is of.
      if ((Object.values(WEB_ROUTES) as string[]).includes(layer.path.toString())) continue;
      const path = layer.path.toString().replace(/:(\w+)/g, "{$1}");
      for (const method of layer.methods) if (method !== "HEAD") routes.add(`${method} ${path}`);
    }
  }
  for (const path of OPEN_PATHS) routes.add(`GET ${path}`);
  return [...routes].sort();
}

function templateOf(path: string): string | undefined {
  const bare = path.split("?")[0] as string;
  return Object.keys(spec.paths).find((template) =>
    new RegExp(`^${template.replace(/\{\w+\}/g, "[^/]+")}$`).test(bare),
  );
}

export type Answer = Readonly<{ status: number; headers: Headers; text: string }>;

/**
 * What in an answer the description does not allow; empty when it matches. `text` is the
 * whole body as received.
 */
export async function mismatches(method: string, path: string, answer: Answer): Promise<string[]> {
  const what = `${method} ${path} ${answer.status}`;
  const template = templateOf(path);
  if (template === undefined) return [`${what}: the path is not described`];
  const operation = (spec.paths as Json)[template][method.toLowerCase()];
  if (operation === undefined) return [`${what}: the method is not described for ${template}`];
  const declared = operation.responses[String(answer.status)];
  if (declared === undefined) {
    return [`${what}: status ${answer.status} is not described for ${method} ${template}`];
  }
  const { node: response, at } = resolve(
    declared,
    pointer("paths", template, method.toLowerCase(), "responses", String(answer.status)),
  );
  const problems: string[] = [];

  for (const [name, header] of Object.entries((response.headers ?? {}) as Json)) {
    const { node, at: headerAt } = resolve(header, `${at}${pointer("headers", name)}`);
    const value = answer.headers.get(name);
    if (value === null) {
      if (node.required) problems.push(`${what}: header ${name} is missing`);
      continue;
    }
    const validate = validatorAt(`${headerAt}/schema`);
    if (!validate(value))
      problems.push(`${what}: header ${name}: ${ajv.errorsText(validate.errors)}`);
  }

  const content = response.content as Json | undefined;
  if (content === undefined) {
    if (answer.text !== "") problems.push(`${what}: a body where none is described`);
    return problems;
  }
  const type = (answer.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
  if (content[type] === undefined) {
    problems.push(
      `${what}: content type "${type}" is not one of ${Object.keys(content).join(", ")}`,
    );
    return problems;
  }
  const schemaAt = `${at}${pointer("content", type, "schema")}`;
  if (type === "text/event-stream")
    return [...problems, ...(await eventMismatches(what, schemaAt, answer.text))];
  const validate = validatorAt(schemaAt);
  let body: unknown = answer.text;
  if (type === "application/json") {
    try {
      body = JSON.parse(answer.text);
    } catch {
      return [...problems, `${what}: the body is not JSON: ${answer.text.slice(0, 200)}`];
    }
  }
  if (!validate(body)) {
    problems.push(`${what}: body ${ajv.errorsText(validate.errors)}: ${answer.text.slice(0, 500)}`);
  }
  return problems;
}

/**
 * Each event, as {event, id, data}, validates against the stream's schema, and its data
 * against the schema the data's contentSchema names; comments are heartbeats.
 */
async function eventMismatches(what: string, schemaAt: string, text: string): Promise<string[]> {
  const validateEvent = validatorAt(schemaAt);
  const validateData = validatorAt(`${schemaAt}/properties/data/contentSchema`);
  const problems: string[] = [];
  async function* chunks() {
    yield new TextEncoder().encode(text);
  }
  for await (const message of readSse(chunks())) {
    if (message.comment !== undefined && message.data === "") continue;
    const event = { event: message.event, id: message.id, data: message.data };
    if (!validateEvent(event)) {
      problems.push(
        `${what}: event ${ajv.errorsText(validateEvent.errors)}: ${JSON.stringify(event)}`,
      );
    } else if (!validateData(JSON.parse(message.data))) {
      problems.push(`${what}: event data ${ajv.errorsText(validateData.errors)}: ${message.data}`);
    }
  }
  return problems;
}
