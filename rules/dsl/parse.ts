/** YAML rule files → validated RuleSet. Every error names file, rule, field and line. */
import { createHash } from 'node:crypto';
import { condition, parseActions, parseAggregates, parseWindow, positive } from './parse-common.js';
import { RuleError } from './errors.js';
import { parseMachine } from './parse-machine.js';
import { Field, isRecord, YamlSource } from './reader.js';
import type { ConditionRule, InterlockSpec, RuleSet, RuleSpec, TriggerSpec } from './types.js';

const RULE_KEYS = [
  'id',
  'version',
  'description',
  'trigger',
  'per',
  'window',
  'aggregate',
  'when',
  'clear',
  'for',
  'debounce',
  'cooldown',
  'rateLimit',
  'fire',
  'then',
  'onClear',
  'watchdog',
  'machine',
];

/** Parses one YAML rule file's text. Throws RuleError. */
export function parseRuleFile(file: string, text: string): RuleSet {
  const src = YamlSource.parse(file, text);
  const root = new Field(src, src.doc.toJS(), []);
  if (!root.present) return { rules: [], interlocks: [] };
  root.object(['rules', 'interlocks']);
  const ids = new Set<string>();
  const rules = root
    .get('rules')
    .optList()
    .map((f, i) => {
      const rule = parseRule(f, i);
      if (ids.has(rule.id)) f.get('id').fail(`duplicate rule id "${rule.id}"`, 'rules/duplicate');
      ids.add(rule.id);
      return rule;
    });
  const interlocks = root
    .get('interlocks')
    .optList()
    .map((f) => parseInterlock(f, file));
  return { rules, interlocks };
}

/** The content hash of a rule's definition: same text, same version, on every gateway. */
export function contentVersion(def: unknown): string {
  return createHash('sha256').update(canonicalJson(def)).digest('hex').slice(0, 12);
}

/** JSON with object keys sorted at every level: equal definitions, equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function parseRule(raw: Field, index: number): RuleSpec {
  const unnamed = raw.inRule(`rules[${index}]`);
  if (!isRecord(raw.value)) unnamed.fail('a rule must be a mapping');
  const id = unnamed.get('id').id();
  const f = raw.inRule(id).object(RULE_KEYS);
  const declared = f.get('version').present ? String(f.get('version').scalar()) : undefined;
  const hash = contentVersion(f.value);
  const base = {
    id,
    version: declared !== undefined ? `${declared}+${hash}` : hash,
    file: raw.src.file,
    definition: canonicalJson(f.value),
    trigger: parseTrigger(f.get('trigger')),
    ...(f.get('description').present && { description: f.get('description').string() }),
  };
  if (f.get('machine').present) {
    for (const k of [
      'window',
      'aggregate',
      'when',
      'clear',
      'for',
      'debounce',
      'cooldown',
      'rateLimit',
      'then',
      'onClear',
      'watchdog',
      'per',
      'fire',
    ]) {
      if (f.get(k).present) f.get(k).fail(`not allowed in a machine rule (put it under machine)`);
    }
    return { kind: 'machine', ...base, ...parseMachine(f.get('machine')) };
  }
  return parseCondition(f, base);
}

function parseCondition(
  f: Field,
  base: Pick<ConditionRule, 'id' | 'version' | 'file' | 'definition' | 'trigger' | 'description'>,
): ConditionRule {
  const window = parseWindow(f.get('window'));
  const aggregates = parseAggregates(f.get('aggregate'));
  if (aggregates.length > 0 && !window) f.get('aggregate').fail('aggregates need a window');
  const when = f.get('when').present ? condition(f.get('when')) : undefined;
  const clear = f.get('clear').present ? condition(f.get('clear')) : undefined;
  if (clear !== undefined && when === undefined) f.get('clear').fail('clear (hysteresis) needs a when');
  const then = parseActions(f.get('then'));
  const onClear = parseActions(f.get('onClear'));
  const rl = f.get('rateLimit');
  const rateLimit = rl.present
    ? (rl.object(['max', 'per']), { max: rl.get('max').positiveInt(), perMs: rl.get('per').durationMs() })
    : undefined;
  const wd = f.get('watchdog');
  const watchdog = wd.present
    ? (wd.object(['silence', 'devices', 'then', 'onResume']),
      {
        silenceMs: positive(wd.get('silence')),
        devices: wd.get('devices').present ? wd.get('devices').strings() : [...(base.trigger.devices ?? [])],
        // biome-ignore lint/suspicious/noThenProperty: `then` is the rule language's action list; a spec is never awaited
        then: parseActions(wd.get('then')),
        onResume: parseActions(wd.get('onResume')),
      })
    : undefined;
  if (when === undefined && watchdog === undefined) f.fail('a rule needs a when, a watchdog or a machine');
  if (when !== undefined && then.length + onClear.length === 0)
    f.get('then').fail('a rule with a when needs actions in then or onClear');
  const forMs = f.get('for').optDurationMs();
  const debounceMs = f.get('debounce').optDurationMs();
  const cooldownMs = f.get('cooldown').optDurationMs();
  return {
    kind: 'condition',
    ...base,
    per: f.get('per').oneOf(['device', 'rule'], 'rule'),
    aggregates,
    fire: f.get('fire').oneOf(['rising', 'every'], 'rising'),
    then,
    onClear,
    ...(window && { window }),
    ...(when !== undefined && { when }),
    ...(clear !== undefined && { clear }),
    ...(forMs !== undefined && { forMs }),
    ...(debounceMs !== undefined && { debounceMs }),
    ...(cooldownMs !== undefined && { cooldownMs }),
    ...(rateLimit && { rateLimit }),
    ...(watchdog && { watchdog }),
  };
}

function parseTrigger(f: Field): TriggerSpec {
  if (!f.present) return {};
  f.object(['devices', 'models', 'sites', 'names']);
  const out: Record<string, string[]> = {};
  for (const k of ['devices', 'models', 'sites', 'names']) {
    if (f.get(k).present) {
      const list = f.get(k).strings();
      if (list.length === 0) f.get(k).fail('must not be empty (leave it out to match any)');
      out[k] = list;
    }
  }
  return out;
}

function parseInterlock(f: Field, file: string): InterlockSpec {
  f.object(['id', 'never']);
  const id = f.get('id').id();
  const g = f.inRule(id);
  const never = g
    .get('never')
    .list()
    .map((e) => {
      e.object(['device', 'actuator', 'value']);
      return { device: e.get('device').string(), actuator: e.get('actuator').string(), value: e.get('value').scalar() };
    });
  if (never.length < 2) g.get('never').fail('an interlock names at least two commanded states');
  return { id, file, never };
}

export { RuleError };
