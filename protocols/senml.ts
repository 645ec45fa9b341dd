/**
 * SenML packs in CBOR (RFC 8428 §6): integer labels, base-value resolution
 * (§4.6) and name validation (§4.5.1). Decoding is bounded and returns typed errors.
 */
import { type CborKey, type CborValue, decodeCbor, encodeCbor, isMap } from './cbor.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

/** CBOR labels, RFC 8428 Table 6. */
export const SenmlLabel = {
  bver: -1,
  bn: -2,
  bt: -3,
  bu: -4,
  bv: -5,
  bs: -6,
  n: 0,
  u: 1,
  v: 2,
  vs: 3,
  vb: 4,
  s: 5,
  t: 6,
  ut: 7,
  vd: 8,
} as const;

/** Highest SenML version understood (RFC 8428 §4.4). */
export const SENML_VERSION = 10;
export const MAX_RECORDS = 256;
const MAX_STRING = 256;
/** Times below 2^28 are relative to "now" (RFC 8428 §4.5.3). */
export const RELATIVE_TIME_LIMIT = 2 ** 28;

/** A record as written on the wire (only the fields we model). */
export interface SenmlRecord {
  bn?: string;
  bt?: number;
  bu?: string;
  bv?: number;
  bs?: number;
  bver?: number;
  n?: string;
  u?: string;
  v?: number;
  vs?: string;
  vb?: boolean;
  vd?: Uint8Array;
  s?: number;
  t?: number;
  ut?: number;
}

/** A resolved record (§4.6): base values applied, one value kind present. */
export interface ResolvedRecord {
  name: string;
  /** Seconds; below 2^28 it is relative to the receiver's clock. */
  time: number;
  unit?: string;
  value?: number;
  stringValue?: string;
  boolValue?: boolean;
  dataValue?: Uint8Array;
  sum?: number;
  updateTime?: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9\-:./_]*$/;
/** A resolved name as §4.5.1 allows it (resolvePack refuses a pack with any other). */
export const isSenmlName = (name: string): boolean => NAME_RE.test(name);

const labelNames = new Map<number, keyof SenmlRecord>(
  Object.entries(SenmlLabel).map(([k, v]) => [v, k as keyof SenmlRecord]),
);
const numberFields = new Set(['bt', 'bv', 'bs', 'bver', 'v', 's', 't', 'ut']);
const stringFields = new Set(['bn', 'bu', 'n', 'u', 'vs']);

/** Reads one wire record from a decoded CBOR map. */
function readRecord(m: ReadonlyMap<CborKey, CborValue>, index: number): Result<SenmlRecord> {
  const rec: Record<string, unknown> = {};
  for (const [label, val] of m) {
    const bad = readLabel(rec, label, val, index);
    if (bad) return bad;
  }
  return ok(rec as SenmlRecord);
}

/**
 * One label of a wire record into `rec` (ignored if unknown); the failure if it is invalid.
 * Shared by readRecord and the fast reading decoder (reading-decode.ts).
 */
export function readLabel(
  rec: Record<string, unknown>,
  label: CborKey,
  val: CborValue,
  index: number,
): Result<never> | undefined {
  if (typeof label === 'string') {
    // §4.4 / §12.2: labels ending in "_" must be understood.
    if (label.endsWith('_'))
      return fail('senml/must-understand', `record ${index}: label "${label}" must be understood`);
    return undefined;
  }
  const field = typeof label === 'number' ? labelNames.get(label) : undefined;
  if (field === undefined) return undefined; // unknown extension labels are ignored (§4.4)
  if (numberFields.has(field)) {
    if (typeof val !== 'number' || !Number.isFinite(val))
      return fail('senml/bad-field', `record ${index}: ${field} must be a finite number`);
  } else if (stringFields.has(field)) {
    if (typeof val !== 'string' || val.length > MAX_STRING)
      return fail('senml/bad-field', `record ${index}: ${field} must be a string of at most ${MAX_STRING}`);
  } else if (field === 'vb') {
    if (typeof val !== 'boolean') return fail('senml/bad-field', `record ${index}: vb must be a boolean`);
  } else if (field === 'vd') {
    if (!(val instanceof Uint8Array)) return fail('senml/bad-field', `record ${index}: vd must be a byte string`);
  }
  rec[field] = val;
  return undefined;
}

/** Resolves base fields across a pack (RFC 8428 §4.6). */
export function resolvePack(records: readonly SenmlRecord[]): Result<ResolvedRecord[]> {
  let bn = '';
  let bt = 0;
  let bu: string | undefined;
  let bv = 0;
  let bs = 0;
  const out: ResolvedRecord[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.bver !== undefined && (!Number.isInteger(r.bver) || r.bver > SENML_VERSION)) {
      return fail('senml/unsupported-version', `record ${i}: SenML version ${r.bver} is newer than ${SENML_VERSION}`);
    }
    if (r.bn !== undefined) bn = r.bn;
    if (r.bt !== undefined) bt = r.bt;
    if (r.bu !== undefined) bu = r.bu;
    if (r.bv !== undefined) bv = r.bv;
    if (r.bs !== undefined) bs = r.bs;
    // counted, not filtered: this runs for every record of every frame a replay reads
    const kinds =
      (r.v !== undefined ? 1 : 0) +
      (r.vs !== undefined ? 1 : 0) +
      (r.vb !== undefined ? 1 : 0) +
      (r.vd !== undefined ? 1 : 0);
    if (kinds > 1) return fail('senml/multiple-values', `record ${i}: more than one value field`);
    const hasValue = kinds === 1 || r.s !== undefined;
    if (!hasValue) {
      // §4.6: a record with only base fields carries no measurement.
      if (r.n === undefined && r.t === undefined) continue;
      return fail('senml/no-value', `record ${i}: has neither a value nor a sum`);
    }
    const name = bn + (r.n ?? '');
    if (!isSenmlName(name))
      return fail('senml/bad-name', `record ${i}: name "${name}" is not a valid SenML name (§4.5.1)`);
    const rec: ResolvedRecord = { name, time: bt + (r.t ?? 0) };
    const unit = r.u ?? bu;
    if (unit !== undefined) rec.unit = unit;
    if (r.v !== undefined) rec.value = bv + r.v;
    if (r.vs !== undefined) rec.stringValue = r.vs;
    if (r.vb !== undefined) rec.boolValue = r.vb;
    if (r.vd !== undefined) rec.dataValue = r.vd;
    if (r.s !== undefined) rec.sum = bs + r.s;
    if (r.ut !== undefined) rec.updateTime = r.ut;
    out.push(rec);
  }
  return ok(out);
}

/** Reads a pack from an already-decoded CBOR value (an array of maps). */
export function readPack(value: CborValue): Result<SenmlRecord[]> {
  if (!Array.isArray(value)) return fail('senml/not-array', 'a SenML pack must be an array');
  if (value.length === 0) return fail('senml/empty', 'a SenML pack must hold at least one record');
  if (value.length > MAX_RECORDS)
    return fail('senml/too-many-records', `pack of ${value.length} records exceeds ${MAX_RECORDS}`);
  const out: SenmlRecord[] = [];
  for (let i = 0; i < value.length; i++) {
    const m = value[i]!;
    if (!isMap(m)) return fail('senml/not-map', `record ${i} is not a map`);
    const r = readRecord(m, i);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return ok(out);
}

/** Decodes and resolves a standalone SenML-CBOR pack. */
export function decodeSenml(bytes: Uint8Array): Result<ResolvedRecord[]> {
  const c = decodeCbor(bytes, { maxBytes: 8192, maxDepth: 3, maxContainerLength: MAX_RECORDS });
  if (!c.ok) return c;
  const p = readPack(c.value);
  return p.ok ? resolvePack(p.value) : p;
}

/** The labels and their fields in Table 6 order, sorted once (a device encodes a pack per frame). */
export const senmlLabelsInOrder: readonly (readonly [number, keyof SenmlRecord])[] = [...labelNames].sort(
  (a, b) => a[0] - b[0],
);

/** Builds the CBOR map form of records (field order as in Table 6). */
export function packToCbor(records: readonly SenmlRecord[]): Map<number, unknown>[] {
  if (records.length === 0 || records.length > MAX_RECORDS) {
    throw new ProtocolUsageError('senml/bad-pack', `a pack holds 1..${MAX_RECORDS} records`);
  }
  return records.map((r) => {
    const m = new Map<number, unknown>();
    for (const [label, field] of senmlLabelsInOrder) {
      const v = r[field];
      if (v !== undefined) m.set(label, v);
    }
    return m;
  });
}

export function encodeSenml(records: readonly SenmlRecord[]): Uint8Array {
  return encodeCbor(packToCbor(records));
}
