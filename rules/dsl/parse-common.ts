/** Field parsers shared by rule and machine sections. */
import { compileCondition } from './cel.js';
import type { Field } from './reader.js';
import type { ActionSpec } from './types.js';

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

export function parseActions(f: Field): ActionSpec[] {
  return f.optList().map((a) => {
    a.object(['command', 'publish', 'alert']);
    const keys = a.keys();
    if (keys.length !== 1) a.fail('an action is exactly one of command, publish, alert');
    if (a.get('alert').present) return { kind: 'alert', message: a.get('alert').string() };
    if (a.get('publish').present) {
      const p = a.get('publish').object(['topic', 'payload']);
      return { kind: 'publish', topic: p.get('topic').string(), payload: p.get('payload').string() };
    }
    const c = a.get('command').object(['device', 'actuator', 'value', 'ttl']);
    return { kind: 'command', device: c.get('device').string(), actuator: c.get('actuator').string(), value: c.get('value').scalar(), ttlMs: positive(c.get('ttl')) };
  });
}

