// Targets defined in a file, such as one a ConfigMap mounts: a JSON object of tenants, each
// an object of targets by name, each a definition as PUT /targets/:name takes it:
//
//   { "acme": { "people": { "table": "people", "mode": "upsert", "key": ["id"], "columns": […] } } }
//
// Applied with the migrations, by the user that owns the schema: every problem of the file is
// reported together, and nothing is applied then; a target whose table does not fit it is
// reported as PUT would answer, after the others are applied.
import {
  isTargetName,
  parseTargetDefinition,
  type TargetDefinition,
  tenantSchema,
} from "./target-definition.ts";

export type FileTarget = Readonly<{
  tenant: string;
  name: string;
  schema: string;
  definition: TargetDefinition;
}>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export function parseTargetsFile(text: string): { targets: FileTarget[] } | { problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { problems: [`the file is not JSON: ${(err as Error).message}`] };
  }
  if (!isObject(raw)) return { problems: ["the file must be a JSON object of tenants"] };
  const targets: FileTarget[] = [];
  const problems: string[] = [];
  for (const [tenant, byName] of Object.entries(raw)) {
    if (tenant === "" || /[,:\s]/.test(tenant)) {
      problems.push(`tenant "${tenant.slice(0, 40)}" is not a tenant of API_KEYS`);
      continue;
    }
    if (!isObject(byName)) {
      problems.push(`${tenant}: must be an object of targets by name`);
      continue;
    }
    const schema = tenantSchema(tenant);
    for (const [name, definition] of Object.entries(byName)) {
      if (!isTargetName(name)) {
        problems.push(`${tenant}/${name.slice(0, 40)}: not a target's name`);
        continue;
      }
      const parsed = parseTargetDefinition(definition, schema);
      if ("problems" in parsed) {
        problems.push(...parsed.problems.map((p) => `${tenant}/${name}: ${p}`));
      } else {
        targets.push({ tenant, name, schema, definition: parsed.definition });
      }
    }
  }
  return problems.length > 0 ? { problems } : { targets };
}
