/**
 * Decisions as JSON lines (what `gateway rules test --json` prints and `--against` reads).
 * Reading is for files from elsewhere: bad lines are reported with their number, never thrown.
 */
import type { Action, Decision, FrameRef } from '../decision.js';

export const decisionToJson = (d: Decision): string => JSON.stringify(d);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): boolean => typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string';

function action(v: unknown): Action | string {
  if (!isObj(v)) return 'action must be an object';
  if (v.kind === 'alert')
    return typeof v.message === 'string' ? { kind: 'alert', message: v.message } : 'action.message must be a string';
  if (v.kind === 'publish')
    return typeof v.topic === 'string' && typeof v.payload === 'string'
      ? { kind: 'publish', topic: v.topic, payload: v.payload }
      : 'action.topic/payload must be strings';
  if (v.kind === 'command') {
    const c = v.command;
    if (
      !isObj(c) ||
      typeof c.device !== 'string' ||
      typeof c.actuator !== 'string' ||
      !isScalar(c.value) ||
      typeof c.ttlMs !== 'number'
    )
      return 'action.command needs device, actuator, value, ttlMs';
    return {
      kind: 'command',
      command: { device: c.device, actuator: c.actuator, value: c.value as number | boolean | string, ttlMs: c.ttlMs },
    };
  }
  if (v.kind === 'settings') {
    const values = v.values;
    if (
      typeof v.device !== 'string' ||
      !Array.isArray(values) ||
      !values.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && isScalar(e[1]))
    )
      return 'action.settings needs device and values [[key, value]…]';
    return {
      kind: 'settings',
      device: v.device,
      values: (values as [string, number | boolean | string][]).map(([k, x]) => [k, x] as const),
    };
  }
  return 'action.kind must be command, publish, alert or settings';
}

/** A decision from a parsed JSON value, or what is wrong with it. */
export function decisionFromJson(v: unknown): Decision | string {
  if (!isObj(v)) return 'must be a JSON object';
  if (typeof v.rule !== 'string' || typeof v.ruleVersion !== 'string') return 'rule and ruleVersion must be strings';
  if (typeof v.at !== 'number' || !Number.isFinite(v.at)) return 'at must be ms since the epoch';
  if (typeof v.reason !== 'string') return 'reason must be a string';
  if (
    !Array.isArray(v.inputs) ||
    !v.inputs.every(
      (i) => isObj(i) && typeof i.device === 'string' && Number.isInteger(i.boot) && Number.isInteger(i.seq),
    )
  )
    return 'inputs must be [{device, boot, seq}]';
  const a = action(v.action);
  if (typeof a === 'string') return a;
  const inputs: FrameRef[] = (v.inputs as { device: string; boot: number; seq: number }[]).map((i) => ({
    device: i.device,
    boot: i.boot,
    seq: i.seq,
  }));
  return { rule: v.rule, ruleVersion: v.ruleVersion, at: v.at, inputs, reason: v.reason, action: a };
}

export function parseDecisionsJsonl(text: string): {
  decisions: Decision[];
  errors: { line: number; message: string }[];
} {
  const decisions: Decision[] = [];
  const errors: { line: number; message: string }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      errors.push({ line: i + 1, message: `not JSON (${(e as Error).message})` });
      return;
    }
    const d = decisionFromJson(v);
    if (typeof d === 'string') errors.push({ line: i + 1, message: d });
    else decisions.push(d);
  });
  return { decisions, errors };
}
