/** Field parsers shared by rule and machine sections. */
import { ID_PATTERN } from '../../protocols/ids.js';
import { MAX_SETTINGS, settingKeyProblem, settingValueProblem } from '../../protocols/settings.js';
import type { SettingsValues } from '../decision.js';
import { compileCondition } from './cel.js';
import type { Field } from './reader.js';
import { type ActionSpec, AGGREGATE_FNS, type AggregateFn, type AggregateSpec, type WindowSpec } from './types.js';

export function positive(f: Field): number {
  const ms = f.durationMs();
  if (ms <= 0) f.fail('must be longer than 0');
  return ms;
}

/** A CEL expression that parses and type-checks (kept as source; the engine compiles it once). */
export function condition(f: Field): string {
  const src = f.string();
  const c = compileCondition(src);
  if (typeof c === 'string') f.fail(`CEL: ${c}`, 'rules/cel');
  return src;
}

/** A device: a template filled per decision, or else a device id checked now. */
function deviceRef(f: Field): string {
  const s = f.string();
  if (!s.includes('{{') && !ID_PATTERN.test(s)) f.fail(`"${s}" is not a device id`);
  return s;
}

/** `values:` of a settings action: checked as protocols/settings.ts checks a settings block, sorted by key. */
function settingsValues(f: Field): SettingsValues {
  f.object(f.keys());
  const keys = f.keys().sort();
  if (keys.length === 0 || keys.length > MAX_SETTINGS) f.fail(`must set 1..${MAX_SETTINGS} settings`);
  return keys.map((k) => {
    const v = f.get(k);
    const problem = settingKeyProblem(k) ?? (v.present ? settingValueProblem(v.value) : 'must have a value');
    if (problem !== undefined) v.fail(problem);
    return [k, v.value as number | boolean | string] as const;
  });
}

export function parseActions(f: Field): ActionSpec[] {
  return f.optList().map((a) => {
    a.object(['command', 'publish', 'alert', 'settings']);
    const keys = a.keys();
    if (keys.length !== 1) a.fail('an action is exactly one of command, publish, alert, settings');
    if (a.get('alert').present) return { kind: 'alert', message: a.get('alert').string() };
    if (a.get('settings').present) {
      const s = a.get('settings').object(['device', 'values']);
      return { kind: 'settings', device: deviceRef(s.get('device')), values: settingsValues(s.get('values')) };
    }
    if (a.get('publish').present) {
      const p = a.get('publish').object(['topic', 'payload']);
      return { kind: 'publish', topic: p.get('topic').string(), payload: p.get('payload').string() };
    }
    const c = a.get('command').object(['device', 'actuator', 'value', 'ttl']);
    return {
      kind: 'command',
      device: c.get('device').string(),
      actuator: c.get('actuator').string(),
      value: c.get('value').scalar(),
      ttlMs: positive(c.get('ttl')),
    };
  });
}

export function parseWindow(f: Field): WindowSpec | undefined {
  if (!f.present) return undefined;
  f.object(['tumbling', 'sliding', 'count']);
  const keys = f.keys();
  if (keys.length !== 1) f.fail('must have exactly one of tumbling, sliding, count');
  if (f.get('count').present) return { kind: 'count', count: f.get('count').positiveInt() };
  const kind = keys[0] as 'tumbling' | 'sliding';
  return { kind, sizeMs: positive(f.get(kind)) };
}

const AGG_RE = new RegExp(`^(${AGGREGATE_FNS.join('|')})\\(\\s*([A-Za-z0-9][A-Za-z0-9\\-:./_]*)\\s*\\)$`);

export function parseAggregates(f: Field): AggregateSpec[] {
  if (!f.present) return [];
  f.object(f.keys());
  return f.keys().map((name) => {
    const g: Field = f.get(name);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      g.fail(`aggregate name "${name}" must be an identifier (it is read as agg.${name})`);
    const m = AGG_RE.exec(g.string().trim());
    if (!m) g.fail(`must be fn(name) with fn one of ${AGGREGATE_FNS.join(', ')}`);
    return { name, fn: m[1] as AggregateFn, of: m[2]! };
  });
}
