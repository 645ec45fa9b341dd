/**
 * Desired settings of a device (its "twin"): the log record that sets them and the signed
 * downlink message that carries them to the device. Pure codecs, no I/O.
 *
 * Log: body of a `settings` block (protocols/block.ts), canonical CBOR (RFC 8949 §4.2.1):
 *
 *   {1: device, 2: [[key, value], …] (1..16, keys sorted and unique), 3: at (ms), 4?: by (text)}
 *
 * As in actuation blocks, blocks and messages carry no floats: a non-integer number (and -0) is an
 * 8-byte big-endian IEEE 754 double in a byte string, and a double holding a non-negative
 * integer is refused (one encoding per value). Negative integers are CBOR major type 1.
 *
 * Each key's desired value is the last writer's: the block with the highest (lamport, author
 * key bytes) among those setting it, so every gateway holding the same blocks picks the same
 * value, whatever order they arrived in (`compareVersions`).
 *
 * Downlink (the payload of a COSE_Sign1 signed by the sending gateway, kid = gateway id,
 * RFC 9052 §4.2), plain CBOR (RFC 8949), message type 16:
 *
 *   {0: 16, 8: id (8..32 bytes), 9: target, 12: expires ms, 13: issued ms,
 *    17: [[key, value, lamport, author (32 bytes)], …] (1..16, keys unique)}
 *
 * The device keeps, per key, the value with the highest version it applied, so any gateway may
 * deliver: a stale delivery (a gateway that has not synced a newer setting yet) changes
 * nothing. It answers with a command-ack (protocols/frame.ts) naming the message id and
 * reports what it holds in its readings as SenML records `set.<key>` (RFC 8428 §4.5.1 names).
 * Decoding never throws: every fault is a `settings/…` error.
 */
import { type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { ID_PATTERN } from './ids.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

export type SettingValue = number | boolean | string;

/** Keys per device (and per message): what a reading can report next to its sensors. */
export const MAX_SETTINGS = 16;
/** Longest text value, in characters. */
const MAX_SETTING_TEXT = 64;
/** A SenML-safe name (RFC 8428 §4.5.1) that reads as a setting: letter first, then letters, digits, `_ . -`. */
export const SETTING_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;
/** Reported settings are SenML records named `set.<key>`. */
export const SETTING_RECORD_PREFIX = 'set.';
/** Body type of the downlink message (key 0). */
const SETTINGS_MESSAGE_TYPE = 16;
/** `rule:` and a rule id (rules/dsl: up to 64 characters), or `cli`. */
const MAX_BY = 69;
const AUTHOR_BYTES = 32;

export interface SettingsRecord {
  readonly device: string;
  /** Sorted by key, keys unique. */
  readonly values: readonly (readonly [string, SettingValue])[];
  /** When it was asked for (the asker's clock, ms): shown, not used to order. */
  readonly at: number;
  /** Who asked: `cli`, `rule:<id>`, … */
  readonly by?: string;
}

/** The order of settings across gateways: lamport first, then the author's key bytes. */
export interface SettingVersion {
  readonly lamport: number;
  readonly author: Uint8Array;
}

export interface SettingEntry {
  readonly key: string;
  readonly value: SettingValue;
  readonly version: SettingVersion;
}

export interface SettingsMessage {
  readonly type: 'settings';
  readonly id: Uint8Array;
  readonly target: string;
  readonly issued: number;
  readonly expires: number;
  readonly entries: readonly SettingEntry[];
}

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`. */
export function compareVersions(a: SettingVersion, b: SettingVersion): number {
  if (a.lamport !== b.lamport) return a.lamport < b.lamport ? -1 : 1;
  const n = Math.min(a.author.length, b.author.length);
  for (let i = 0; i < n; i++) if (a.author[i] !== b.author[i]) return a.author[i]! < b.author[i]! ? -1 : 1;
  return a.author.length - b.author.length;
}

/** Why `key` cannot be a setting key, or undefined. */
export function settingKeyProblem(key: string): string | undefined {
  return SETTING_KEY.test(key)
    ? undefined
    : `setting key "${key.slice(0, 40)}" must be a letter then up to 31 letters, digits, "_", "." or "-"`;
}

/** Why `value` cannot be a setting value, or undefined. */
export function settingValueProblem(value: unknown): string | undefined {
  if (typeof value === 'boolean') return undefined;
  if (typeof value === 'number')
    return Number.isFinite(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER
      ? undefined
      : 'a number setting must be finite and within ±2^53';
  if (typeof value === 'string')
    return value.length <= MAX_SETTING_TEXT ? undefined : `a text setting is at most ${MAX_SETTING_TEXT} characters`;
  return 'a setting is a number, a boolean or text';
}

// ---------------------------------------------------------------------------
// Log record

type Plain = number | string | boolean | Uint8Array | readonly Plain[] | Map<number, Plain>;

function usage(what: string): never {
  throw new ProtocolUsageError('settings/bad-record', what);
}

/** A number the canonical block carries as a CBOR integer; -0 must stay -0, so it is not one. */
const asInteger = (v: number): boolean => Number.isSafeInteger(v) && !Object.is(v, -0);

function blockValue(v: SettingValue): Plain {
  const problem = settingValueProblem(v);
  if (problem !== undefined) usage(problem);
  if (typeof v !== 'number' || asInteger(v)) return v;
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v);
  return b;
}

function blockValueOf(v: CborValue | undefined): SettingValue | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'string') return v.length <= MAX_SETTING_TEXT ? v : undefined;
  if (v instanceof Uint8Array && v.length === 8) {
    const d = new DataView(v.buffer, v.byteOffset, 8).getFloat64(0);
    // One encoding per value: a double the encoder writes as an integer is refused.
    return Number.isFinite(d) && !asInteger(d) && Math.abs(d) <= Number.MAX_SAFE_INTEGER ? d : undefined;
  }
  return undefined;
}

/** Sorted, unique, bounded entries; throws ProtocolUsageError otherwise. */
function checkedValues(values: readonly (readonly [string, SettingValue])[]): [string, SettingValue][] {
  if (values.length === 0 || values.length > MAX_SETTINGS) usage(`1..${MAX_SETTINGS} settings at a time`);
  const out = [...values].map(([k, v]) => [k, v] as [string, SettingValue]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (let i = 0; i < out.length; i++) {
    const problem = settingKeyProblem(out[i]![0]);
    if (problem !== undefined) usage(problem);
    if (i > 0 && out[i - 1]![0] === out[i]![0]) usage(`setting "${out[i]![0]}" given twice`);
  }
  return out;
}

/**
 * The `[[key, value], …]` list of a settings block (sorted by key, values as blocks carry them);
 * throws ProtocolUsageError on bad values. The audit of a rule's settings action carries the same list.
 */
export function settingsValuesBody(values: readonly (readonly [string, SettingValue])[]): Plain[] {
  return checkedValues(values).map(([k, v]) => [k, blockValue(v)]);
}

/** The block body of a settings record; throws ProtocolUsageError on a bad one. */
export function settingsBody(r: SettingsRecord): Map<number, Plain> {
  if (!ID_PATTERN.test(r.device)) usage('device must be a device id');
  if (!(Number.isSafeInteger(r.at) && r.at >= 0)) usage('at must be a non-negative integer');
  const m = new Map<number, Plain>([
    [1, r.device],
    [2, settingsValuesBody(r.values)],
    [3, r.at],
  ]);
  if (r.by !== undefined) m.set(4, r.by.length <= MAX_BY ? r.by : usage(`by is at most ${MAX_BY} characters`));
  return m;
}

const isNat = (v: CborValue | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Decodes a settings block body. Never throws. */
export function decodeSettingsBody(body: CborValue): Result<SettingsRecord> {
  const bad = (what: string) => fail('settings/bad-record', what);
  if (!(body instanceof Map)) return bad('a settings body is a map');
  for (const k of body.keys()) if (k !== 1 && k !== 2 && k !== 3 && k !== 4) return bad(`unknown key ${String(k)}`);
  const [device, list, at, by] = [body.get(1), body.get(2), body.get(3), body.get(4)];
  if (typeof device !== 'string' || !ID_PATTERN.test(device)) return bad('device must be a device id');
  if (!isNat(at)) return bad('at must be an unsigned integer');
  if (by !== undefined && !(typeof by === 'string' && by.length <= MAX_BY)) return bad('by must be short text');
  const values = decodeSettingsValues(list);
  if (typeof values === 'string') return bad(values);
  return ok({ device, values, at, ...(by !== undefined && { by }) });
}

/** The values of a `[[key, value], …]` list as `settingsValuesBody` writes it, or what is wrong with it. Never throws. */
export function decodeSettingsValues(list: CborValue | undefined): [string, SettingValue][] | string {
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SETTINGS)
    return `settings must be 1..${MAX_SETTINGS} [key, value] pairs`;
  const values: [string, SettingValue][] = [];
  for (const e of list) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !SETTING_KEY.test(e[0]))
      return 'a setting is [key, value] with a valid key';
    const v = blockValueOf(e[1]);
    if (v === undefined) return `setting "${e[0]}": bad value`;
    if (values.length > 0 && values[values.length - 1]![0] >= e[0]) return 'setting keys must be sorted and unique';
    values.push([e[0], v]);
  }
  return values;
}

// ---------------------------------------------------------------------------
// Downlink message

const messageLimits = { maxBytes: 3072, maxDepth: 4, maxItems: 512, maxContainerLength: MAX_SETTINGS };

/** The CBOR payload of a settings message; throws ProtocolUsageError on a bad one. */
export function encodeSettingsMessage(m: SettingsMessage): Uint8Array {
  if (!(m.id instanceof Uint8Array) || m.id.length < 8 || m.id.length > 32) usage('id must be 8..32 bytes');
  if (!ID_PATTERN.test(m.target)) usage('target must be a device id');
  for (const t of [m.issued, m.expires]) if (!(Number.isSafeInteger(t) && t >= 0)) usage('times must be ms ≥ 0');
  if (m.entries.length === 0 || m.entries.length > MAX_SETTINGS) usage(`1..${MAX_SETTINGS} settings at a time`);
  const seen = new Set<string>();
  const entries = m.entries.map((e) => {
    const problem = settingKeyProblem(e.key) ?? settingValueProblem(e.value);
    if (problem !== undefined) usage(problem);
    if (seen.has(e.key)) usage(`setting "${e.key}" given twice`);
    seen.add(e.key);
    if (!(Number.isSafeInteger(e.version.lamport) && e.version.lamport >= 0)) usage('lamport must be an integer ≥ 0');
    if (e.version.author.length !== AUTHOR_BYTES) usage(`author must be ${AUTHOR_BYTES} bytes`);
    return [e.key, blockValue(e.value), e.version.lamport, e.version.author];
  });
  return encodeCbor(
    new Map<number, unknown>([
      [0, SETTINGS_MESSAGE_TYPE],
      [8, m.id],
      [9, m.target],
      [12, m.expires],
      [13, m.issued],
      [17, entries],
    ]),
  );
}

/** Whether a payload claims to be a settings message (its type key), before it is decoded in full. */
export function isSettingsPayload(payload: Uint8Array): boolean {
  const c = decodeCbor(payload, messageLimits);
  return c.ok && c.value instanceof Map && c.value.get(0) === SETTINGS_MESSAGE_TYPE;
}

/** Decodes a settings message payload (after its COSE signature has been checked). Never throws. */
export function decodeSettingsMessage(payload: Uint8Array): Result<SettingsMessage> {
  const c = decodeCbor(payload, messageLimits);
  if (!c.ok) return c;
  const m = c.value;
  const bad = (what: string) => fail('settings/bad-message', what);
  if (!(m instanceof Map) || m.get(0) !== SETTINGS_MESSAGE_TYPE) return bad('not a settings message');
  for (const k of m.keys()) if (![0, 8, 9, 12, 13, 17].includes(k as number)) return bad(`unknown key ${String(k)}`);
  const [id, target, expires, issued, list] = [m.get(8), m.get(9), m.get(12), m.get(13), m.get(17)];
  if (!(id instanceof Uint8Array) || id.length < 8 || id.length > 32) return bad('id must be 8..32 bytes');
  if (typeof target !== 'string' || !ID_PATTERN.test(target)) return bad('target must be a device id');
  if (!isNat(expires) || !isNat(issued)) return bad('issued and expires must be ms ≥ 0');
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SETTINGS)
    return bad(`settings must be 1..${MAX_SETTINGS} entries`);
  const entries: SettingEntry[] = [];
  const seen = new Set<string>();
  for (const e of list) {
    if (!Array.isArray(e) || e.length !== 4) return bad('an entry is [key, value, lamport, author]');
    const [key, value, lamport, author] = e as CborValue[];
    if (typeof key !== 'string' || settingKeyProblem(key) !== undefined || seen.has(key))
      return bad('entry keys must be valid and unique');
    const v = blockValueOf(value);
    if (v === undefined || settingValueProblem(v) !== undefined) return bad(`setting "${key}": bad value`);
    if (!isNat(lamport) || !(author instanceof Uint8Array) || author.length !== AUTHOR_BYTES)
      return bad(`setting "${key}": bad version`);
    seen.add(key);
    entries.push({ key, value: v, version: { lamport, author } });
  }
  return ok({ type: 'settings', id, target, issued, expires, entries });
}
