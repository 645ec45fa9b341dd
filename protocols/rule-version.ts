/**
 * Body of a `rule` log block (kind 4, protocols/block.ts): the definition of one rule version
 * a gateway ran, so every decision's `ruleVersion` in the audit can be traced back to the
 * rule text that made it.
 *
 *   {1: id, 2: version, 3: kind (1 condition, 2 machine, 3 custom), 4: file, 5: definition, 6: at}
 *
 * `definition` is text: the rule's canonical JSON (YAML rules) or its trigger and operator
 * source (TypeScript rules); the version is a hash of it. No floats (blocks are canonical CBOR
 * without them). Decoding never throws: every fault is a `rule-version/…` error.
 */
import type { CborValue } from './cbor.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

export const RULE_KINDS = ['condition', 'machine', 'custom'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
const MAX_RULE_DEFINITION = 64 * 1024;
const MAX_NAME = 128;
const MAX_FILE = 1024;

export interface RuleVersionBody {
  readonly id: string;
  readonly version: string;
  readonly kind: RuleKind;
  /** The file it was loaded from, as configured. */
  readonly file: string;
  readonly definition: string;
  /** When this gateway started running it, ms since the epoch. */
  readonly at: number;
}

const text = (v: unknown, what: string, max: number): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw new ProtocolUsageError('rule-version/bad-field', `${what} must be text of 1..${max} characters`);
  return v;
};

/** The block body. Throws ProtocolUsageError on an invalid field (a caller bug). */
export function ruleVersionBody(b: RuleVersionBody): Map<number, CborValue> {
  const kind = RULE_KINDS.indexOf(b.kind);
  if (kind < 0) throw new ProtocolUsageError('rule-version/bad-field', `kind must be one of ${RULE_KINDS.join(', ')}`);
  if (!Number.isSafeInteger(b.at) || b.at < 0)
    throw new ProtocolUsageError('rule-version/bad-field', 'at must be unsigned ms');
  return new Map<number, CborValue>([
    [1, text(b.id, 'id', MAX_NAME)],
    [2, text(b.version, 'version', MAX_NAME)],
    [3, kind + 1],
    [4, text(b.file, 'file', MAX_FILE)],
    [5, text(b.definition, 'definition', MAX_RULE_DEFINITION)],
    [6, b.at],
  ]);
}

const isText = (v: CborValue | undefined, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max;

export function decodeRuleVersionBody(body: CborValue): Result<RuleVersionBody> {
  if (!(body instanceof Map)) return fail('rule-version/bad-body', 'a rule body is a map');
  for (const k of body.keys())
    if (typeof k !== 'number' || k < 1 || k > 6) return fail('rule-version/bad-body', `unknown key ${String(k)}`);
  const id = body.get(1);
  const version = body.get(2);
  const kind = body.get(3);
  const file = body.get(4);
  const definition = body.get(5);
  const at = body.get(6);
  if (!isText(id, MAX_NAME)) return fail('rule-version/bad-field', `id must be text of 1..${MAX_NAME} characters`);
  if (!isText(version, MAX_NAME))
    return fail('rule-version/bad-field', `version must be text of 1..${MAX_NAME} characters`);
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 1 || kind > RULE_KINDS.length)
    return fail('rule-version/bad-field', 'kind must be 1..3');
  if (!isText(file, MAX_FILE)) return fail('rule-version/bad-field', `file must be text of 1..${MAX_FILE} characters`);
  if (!isText(definition, MAX_RULE_DEFINITION))
    return fail('rule-version/bad-field', `definition must be text of 1..${MAX_RULE_DEFINITION} characters`);
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0)
    return fail('rule-version/bad-field', 'at must be unsigned ms');
  return ok({ id, version, kind: RULE_KINDS[kind - 1]!, file, definition, at });
}
