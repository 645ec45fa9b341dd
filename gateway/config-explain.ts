/**
 * Turns a config validation issue into one line that names the key and what
 * is allowed there, read from the config's own JSON Schema (so the message and
 * `gateway config schema` cannot disagree).
 */
import type { z } from 'zod';

type JsonSchema = {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
};

/** A key that takes a string or a map (`sync.brokers[]`): the map form, where keys are looked up. */
const mapOf = (s: JsonSchema): JsonSchema => s.anyOf?.find((x) => x.properties) ?? s;

/** The schema node at a key path, if the path exists in the schema. */
function nodeAt(root: JsonSchema, path: readonly PropertyKey[]): JsonSchema | undefined {
  let n: JsonSchema | undefined = root;
  for (const k of path) {
    if (!n) return undefined;
    if (typeof k === 'number') n = n.items;
    else n = mapOf(n).properties?.[String(k)];
  }
  return n;
}

/** "integer from 0 to 65535", "one of "a", "b"", "string matching …", "true or false". */
function describeAllowed(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(describeAllowed).join(', or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  switch (s.type) {
    case 'boolean':
      return 'true or false';
    case 'integer':
    case 'number': {
      const kind = s.type === 'integer' ? 'an integer' : 'a number';
      const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `more than ${s.exclusiveMinimum}` : undefined);
      if (lo !== undefined && s.maximum !== undefined) return `${kind} from ${lo} to ${s.maximum}`;
      if (s.exclusiveMinimum !== undefined) return `${kind} greater than ${s.exclusiveMinimum}`;
      if (s.minimum !== undefined) return `${kind} ≥ ${s.minimum}`;
      if (s.maximum !== undefined) return `${kind} ≤ ${s.maximum}`;
      return kind;
    }
    case 'string': {
      const parts = ['a string'];
      if (s.minLength !== undefined || s.maxLength !== undefined)
        parts.push(`of ${s.minLength ?? 0}..${s.maxLength ?? '∞'} characters`);
      if (s.pattern) parts.push(`matching ${s.pattern}`);
      return parts.join(' ');
    }
    case 'array':
      return `a list${s.maxItems !== undefined ? ` of at most ${s.maxItems} items` : ''}`;
    case 'object':
      return s.properties ? `a map with keys ${Object.keys(s.properties).join(', ')}` : 'a map';
    default:
      return 'a valid value';
  }
}

export function explainIssue(issue: z.core.$ZodIssue, schema: unknown): string {
  const root = schema as JsonSchema;
  const path = issue.path.length ? issue.path.join('.') : '(top level)';
  const node = nodeAt(root, issue.path);
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? `${path}: ` : '';
    const map = node && mapOf(node);
    const allowed = map?.properties ? ` (allowed: ${Object.keys(map.properties).join(', ')})` : '';
    return `${where}unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}${allowed}`;
  }
  if (issue.code === 'invalid_value')
    return `${path}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  // Refinements and our own messages already say what is allowed.
  if (issue.code === 'custom' || !node) return `${path}: ${issue.message}`;
  // zod's generic wording ("Invalid input…", "Too big…") is replaced by what the schema allows.
  if (!/^(Invalid|Too )/.test(issue.message)) return `${path}: ${issue.message}`;
  return `${path}: must be ${describeAllowed(node)}`;
}
