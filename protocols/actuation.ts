/**
 * Body of an `actuation` log block (kind 5, protocols/block.ts): a non-empty
 * array of records, each a CBOR map with small integer keys, key 0 the type.
 *
 *   lease     {0:1, 1:at, 2:device, 3:actuator, 4:fence, 5:expires}
 *   decision  {0:2, 1:at, 10:rule, 11:ruleVersion, 12:[[device, boot, seq]…], 13:reason, 14:action,
 *              15?:command id, 16?:fence, 17?:issued, 18?:expires}
 *   outcome   {0:3, 1:at, 20:command id, 21:state, 22?:ack status, 23?:detail, 24:attempts, 25:device, 26:actuator}
 *
 *   action    [1, device, actuator, value, ttlMs] | [2, topic, payload] | [3, message]
 *             | [4, device, [[key, value]…]]   (desired settings: the list as a settings block carries it, protocols/settings.ts)
 *
 * Blocks are canonical CBOR with no floats, so a non-integer command value is
 * carried as an 8-byte big-endian IEEE 754 double in a byte string (-0 too, so it
 * round-trips; a double holding a non-negative integer is refused: one encoding per
 * value); integers, booleans and text are themselves. The lease holder is the block's author
 * (its signature is the proof), so a lease record names no gateway.
 * Decoding never throws: every fault is an `actuation/…` error.
 */
import type { CborValue } from './cbor.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';
import { decodeSettingsValues, type SettingValue, settingsValuesBody } from './settings.js';

export const MAX_ACTUATION_RECORDS = 1024;
const MAX_INPUTS = 256;
const MAX_NAME = 64;
const MAX_TEXT = 1024;
const MAX_PAYLOAD = 4096;

export type ActuationValue = number | boolean | string;

export type AuditAction =
  | {
      readonly kind: 'command';
      readonly command: {
        readonly device: string;
        readonly actuator: string;
        readonly value: ActuationValue;
        readonly ttlMs: number;
      };
    }
  | { readonly kind: 'publish'; readonly topic: string; readonly payload: string }
  | { readonly kind: 'alert'; readonly message: string }
  | {
      readonly kind: 'settings';
      readonly device: string;
      /** Sorted by key, keys unique (as in a settings block). */
      readonly values: readonly (readonly [string, SettingValue])[];
    };

/** Final state of a command at the gateway that issued it (the index is the wire code: append only). */
export const CommandStates = [
  'acked',
  'refused',
  'expired',
  'no-route',
  'no-lease',
  'superseded',
  'interlocked',
] as const;
export type CommandState = (typeof CommandStates)[number];

export interface LeaseRecord {
  readonly type: 'lease';
  /** When the lease was taken or renewed (author's clock, ms). */
  readonly at: number;
  readonly device: string;
  readonly actuator: string;
  readonly fence: number;
  readonly expires: number;
}

export interface DecisionRecord {
  readonly type: 'decision';
  readonly at: number;
  readonly rule: string;
  readonly ruleVersion: string;
  readonly inputs: readonly { readonly device: string; readonly boot: number; readonly seq: number }[];
  readonly reason: string;
  readonly action: AuditAction;
  /** The signed command this decision became, when it did. */
  readonly command?: {
    readonly id: Uint8Array;
    readonly fence?: number;
    readonly issued: number;
    readonly expires: number;
  };
}

export interface OutcomeRecord {
  readonly type: 'outcome';
  readonly at: number;
  readonly commandId: Uint8Array;
  readonly state: CommandState;
  /** The device's command-ack status, when it answered. */
  readonly ackStatus?: number;
  readonly detail?: string;
  readonly attempts: number;
  readonly device: string;
  readonly actuator: string;
}

export type ActuationRecord = LeaseRecord | DecisionRecord | OutcomeRecord;

const T = { lease: 1, decision: 2, outcome: 3 } as const;

// ---------------------------------------------------------------------------
// Encode (to the plain values protocols/block.ts encodes canonically)

type Plain = number | string | boolean | Uint8Array | readonly Plain[] | Map<number, Plain>;

function usage(what: string): never {
  throw new ProtocolUsageError('actuation/bad-record', what);
}
const nat = (n: number, what: string): number =>
  Number.isSafeInteger(n) && n >= 0 ? n : usage(`${what} must be a non-negative integer`);
const name = (s: string, what: string): string =>
  typeof s === 'string' && s.length > 0 && s.length <= MAX_NAME
    ? s
    : usage(`${what} must be 1..${MAX_NAME} characters`);
const text = (s: string, what: string, max = MAX_TEXT): string =>
  typeof s === 'string' && s.length <= max ? s : usage(`${what} must be text of at most ${max} characters`);

/** A number block CBOR carries as an integer: safe, ≥ 0 and not -0 (which must stay -0). */
const asInteger = (v: number): boolean => Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);

/** Integers ≥ 0, booleans and text as themselves; any other finite number (-0 too) as an 8-byte double. */
function encodeActuationValue(v: ActuationValue): Plain {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) usage('value must be finite');
    if (asInteger(v)) return v;
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v);
    return b;
  }
  if (typeof v === 'boolean') return v;
  return text(v, 'value', MAX_NAME);
}

function actionValue(a: AuditAction): Plain {
  switch (a.kind) {
    case 'command': {
      const c = a.command;
      return [
        1,
        name(c.device, 'device'),
        name(c.actuator, 'actuator'),
        encodeActuationValue(c.value),
        nat(c.ttlMs, 'ttlMs'),
      ];
    }
    case 'publish':
      return [2, text(a.topic, 'topic', MAX_TEXT), text(a.payload, 'payload', MAX_PAYLOAD)];
    case 'alert':
      return [3, text(a.message, 'message')];
    case 'settings':
      try {
        return [4, name(a.device, 'device'), settingsValuesBody(a.values)];
      } catch (err) {
        // One error code per codec: a bad value is a bad actuation record here.
        if (err instanceof ProtocolUsageError) usage(err.message);
        throw err;
      }
  }
}

function idBytes(id: Uint8Array): Uint8Array {
  return id instanceof Uint8Array && id.length >= 4 && id.length <= 32 ? id : usage('command id must be 4..32 bytes');
}

function recordValue(r: ActuationRecord): Map<number, Plain> {
  const m = new Map<number, Plain>([
    [0, T[r.type]],
    [1, nat(r.at, 'at')],
  ]);
  switch (r.type) {
    case 'lease':
      m.set(2, name(r.device, 'device'))
        .set(3, name(r.actuator, 'actuator'))
        .set(4, nat(r.fence, 'fence'))
        .set(5, nat(r.expires, 'expires'));
      break;
    case 'decision':
      if (r.inputs.length > MAX_INPUTS) usage(`at most ${MAX_INPUTS} inputs`);
      m.set(10, text(r.rule, 'rule', 128)).set(11, text(r.ruleVersion, 'ruleVersion', 128));
      m.set(
        12,
        r.inputs.map((f) => [name(f.device, 'input device'), nat(f.boot, 'boot'), nat(f.seq, 'seq')]),
      );
      m.set(13, text(r.reason, 'reason')).set(14, actionValue(r.action));
      if (r.command) {
        m.set(15, idBytes(r.command.id))
          .set(17, nat(r.command.issued, 'issued'))
          .set(18, nat(r.command.expires, 'expires'));
        if (r.command.fence !== undefined) m.set(16, nat(r.command.fence, 'fence'));
      }
      break;
    case 'outcome': {
      const code = CommandStates.indexOf(r.state);
      if (code < 0) usage(`unknown state ${String(r.state)}`);
      m.set(20, idBytes(r.commandId)).set(21, code).set(24, nat(r.attempts, 'attempts'));
      m.set(25, name(r.device, 'device')).set(26, name(r.actuator, 'actuator'));
      if (r.ackStatus !== undefined)
        m.set(
          22,
          r.ackStatus >= 0 && r.ackStatus <= 255 ? nat(r.ackStatus, 'ackStatus') : usage('ackStatus must be 0..255'),
        );
      if (r.detail !== undefined) m.set(23, text(r.detail, 'detail'));
      break;
    }
  }
  return m;
}

/** The block body for `records` (1..1024). Throws ProtocolUsageError on an invalid record. */
export function actuationBody(records: readonly ActuationRecord[]): Plain[] {
  if (records.length === 0 || records.length > MAX_ACTUATION_RECORDS)
    usage(`an actuation block holds 1..${MAX_ACTUATION_RECORDS} records`);
  return records.map(recordValue);
}

// ---------------------------------------------------------------------------
// Decode

const isNat = (v: CborValue | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isName = (v: CborValue | undefined): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME;
const isText = (v: CborValue | undefined, max = MAX_TEXT): v is string => typeof v === 'string' && v.length <= max;
const isId = (v: CborValue | undefined): v is Uint8Array => v instanceof Uint8Array && v.length >= 4 && v.length <= 32;
const bad = (i: number, what: string): { ok: false; error: { code: string; message: string } } =>
  fail('actuation/bad-record', `record ${i}: ${what}`);

function decodeActuationValue(v: CborValue | undefined): ActuationValue | undefined {
  if (typeof v === 'boolean') return v;
  if (isNat(v)) return v;
  if (typeof v === 'string' && v.length <= MAX_NAME) return v;
  if (v instanceof Uint8Array && v.length === 8) {
    const d = new DataView(v.buffer, v.byteOffset, 8).getFloat64(0);
    // One encoding per value: a double holding what the encoder writes as an integer is refused.
    return Number.isFinite(d) && !asInteger(d) ? d : undefined;
  }
  return undefined;
}

function decodeAction(v: CborValue | undefined): AuditAction | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const [k, a, b, c, d] = v as CborValue[];
  if (k === 1 && v.length === 5 && isName(a) && isName(b) && isNat(d)) {
    const val = decodeActuationValue(c);
    return val === undefined
      ? undefined
      : { kind: 'command', command: { device: a, actuator: b, value: val, ttlMs: d } };
  }
  if (k === 2 && v.length === 3 && isText(a) && isText(b, MAX_PAYLOAD))
    return { kind: 'publish', topic: a, payload: b };
  if (k === 3 && v.length === 2 && isText(a)) return { kind: 'alert', message: a };
  if (k === 4 && v.length === 3 && isName(a)) {
    const values = decodeSettingsValues(b);
    return typeof values === 'string' ? undefined : { kind: 'settings', device: a, values };
  }
  return undefined;
}

const ALLOWED: Record<number, ReadonlySet<number>> = {
  [T.lease]: new Set([0, 1, 2, 3, 4, 5]),
  [T.decision]: new Set([0, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18]),
  [T.outcome]: new Set([0, 1, 20, 21, 22, 23, 24, 25, 26]),
};

function decodeRecord(v: CborValue, i: number): Result<ActuationRecord> {
  if (!(v instanceof Map)) return bad(i, 'a record is a map');
  const g = (k: number): CborValue | undefined => v.get(k);
  const type = g(0);
  const allowed = typeof type === 'number' ? ALLOWED[type] : undefined;
  if (!allowed) return bad(i, `unknown record type ${String(type)}`);
  for (const k of v.keys()) if (typeof k !== 'number' || !allowed.has(k)) return bad(i, `unknown key ${String(k)}`);
  const at = g(1);
  if (!isNat(at)) return bad(i, 'at must be an unsigned integer');
  if (type === T.lease) {
    const [device, actuator, fence, expires] = [g(2), g(3), g(4), g(5)];
    if (!isName(device) || !isName(actuator) || !isNat(fence) || !isNat(expires))
      return bad(i, 'lease needs device, actuator, fence and expires');
    return ok({ type: 'lease', at, device, actuator, fence, expires });
  }
  if (type === T.decision) {
    const [rule, ruleVersion, inputs, reason] = [g(10), g(11), g(12), g(13)];
    if (!isText(rule, 128) || !isText(ruleVersion, 128) || !isText(reason))
      return bad(i, 'decision needs rule, ruleVersion and reason text');
    if (!Array.isArray(inputs) || inputs.length > MAX_INPUTS) return bad(i, 'inputs must be an array');
    const refs: { device: string; boot: number; seq: number }[] = [];
    for (const f of inputs) {
      if (!Array.isArray(f) || f.length !== 3 || !isName(f[0]) || !isNat(f[1]) || !isNat(f[2]))
        return bad(i, 'an input is [device, boot, seq]');
      refs.push({ device: f[0], boot: f[1], seq: f[2] });
    }
    const action = decodeAction(g(14));
    if (!action) return bad(i, 'bad action');
    const [id, fence, issued, expires] = [g(15), g(16), g(17), g(18)];
    let command: DecisionRecord['command'];
    if (id !== undefined || fence !== undefined || issued !== undefined || expires !== undefined) {
      if (!isId(id) || !isNat(issued) || !isNat(expires) || (fence !== undefined && !isNat(fence)))
        return bad(i, 'command needs an id of 4..32 bytes, issued and expires');
      command = { id, issued, expires, ...(fence !== undefined && { fence }) };
    }
    return ok({ type: 'decision', at, rule, ruleVersion, inputs: refs, reason, action, ...(command && { command }) });
  }
  const [id, state, ackStatus, detail, attempts, device, actuator] = [g(20), g(21), g(22), g(23), g(24), g(25), g(26)];
  if (!isId(id) || !isNat(attempts) || !isName(device) || !isName(actuator))
    return bad(i, 'outcome needs command id, attempts, device and actuator');
  const s = isNat(state) ? CommandStates[state] : undefined;
  if (s === undefined) return bad(i, `unknown state ${String(state)}`);
  if (ackStatus !== undefined && !(isNat(ackStatus) && ackStatus <= 255)) return bad(i, 'ack status must be 0..255');
  if (detail !== undefined && !isText(detail)) return bad(i, 'detail must be text');
  return ok({
    type: 'outcome',
    at,
    commandId: id,
    state: s,
    attempts,
    device,
    actuator,
    ...(ackStatus !== undefined && { ackStatus }),
    ...(detail !== undefined && { detail }),
  });
}

/** Decodes an actuation block body (the `body` of a decoded block of kind `actuation`). Never throws. */
export function decodeActuationBody(body: CborValue): Result<ActuationRecord[]> {
  if (!Array.isArray(body) || body.length === 0 || body.length > MAX_ACTUATION_RECORDS)
    return fail('actuation/bad-body', `an actuation body is an array of 1..${MAX_ACTUATION_RECORDS} records`);
  const out: ActuationRecord[] = [];
  for (let i = 0; i < body.length; i++) {
    const r = decodeRecord(body[i]!, i);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return ok(out);
}
