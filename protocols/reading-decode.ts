/**
 * A reading body decoded straight from its bytes, for readers of many stored frames (rule
 * replays). `decodeBody` builds a Map per CBOR map and checks its way through them; this walks
 * the bytes once. It accepts only the common shape (below) and answers undefined for anything
 * else, valid or not, so that the caller asks `decodeBody`: whatever this returns, decodeBody
 * returns the same reading, provided the records resolve (`resolvePack`, which decodeBody also
 * requires; the caller runs it). A property test holds the two together
 * (test/unit/reading-decode.test.ts).
 *
 * The shape: a definite map of at most the keys 0..4 (integer keys, each once), 0 = 1
 * (reading), boot and seq unsigned 32-bit, time unsigned, 4 = a definite array of 1..256
 * definite maps of at most 16 entries, each with integer labels -16..15 (each once) and scalar values:
 * integers that fit a double exactly, 32- or 64-bit floats, text, true or false. Within the
 * body limits (3072 bytes, 2048 items); nothing after the map.
 */
import { type Body, decodeBody, MAX_COUNTER } from './frame.js';
import { MAX_RECORDS, type ResolvedRecord, readLabel, resolvePack, type SenmlRecord } from './senml.js';
import { shortText } from './short-text.js';

export interface FastReading {
  readonly boot: number;
  readonly seq: number;
  readonly time?: number;
  readonly records: SenmlRecord[];
}

const MAX_BODY_BYTES = 3072;
const MAX_ITEMS = 2048;
const MAX_RECORD_ENTRIES = 16;
/** Not the shape (or not valid): ask decodeBody. */
const NO = Symbol('no');
type Scalar = number | string | boolean;

const scratch = new DataView(new ArrayBuffer(8));

class Bytes {
  pos = 0;
  items = 0;
  constructor(readonly b: Uint8Array) {}

  /** The argument of a head whose major type is already known; NO for indefinite, reserved or unsafe. */
  arg(info: number): number | typeof NO {
    const b = this.b;
    if (info < 24) return info;
    let n: number;
    switch (info) {
      case 24:
        n = 1;
        break;
      case 25:
        n = 2;
        break;
      case 26:
        n = 4;
        break;
      case 27: {
        if (this.pos + 8 > b.length) return NO;
        const hi = b[this.pos]! * 0x1000000 + (b[this.pos + 1]! << 16) + (b[this.pos + 2]! << 8) + b[this.pos + 3]!;
        if (hi >= 0x200000) return NO; // above 2^53: decodeBody gives a bigint
        const lo = b[this.pos + 4]! * 0x1000000 + (b[this.pos + 5]! << 16) + (b[this.pos + 6]! << 8) + b[this.pos + 7]!;
        this.pos += 8;
        return hi * 0x100000000 + lo;
      }
      default:
        return NO;
    }
    if (this.pos + n > b.length) return NO;
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + b[this.pos + i]!;
    this.pos += n;
    return v;
  }

  /** A definite map or array head of the given major type: its length, or NO. */
  container(major: number): number | typeof NO {
    if (++this.items > MAX_ITEMS || this.pos >= this.b.length) return NO;
    const ib = this.b[this.pos++]!;
    if (ib >> 5 !== major) return NO;
    return this.arg(ib & 0x1f);
  }

  /** An integer key (major 0 or 1), or NO. */
  key(): number | typeof NO {
    if (++this.items > MAX_ITEMS || this.pos >= this.b.length) return NO;
    const ib = this.b[this.pos++]!;
    const major = ib >> 5;
    if (major > 1) return NO;
    const n = this.arg(ib & 0x1f);
    if (n === NO) return NO;
    if (major === 0) return n;
    return n >= Number.MAX_SAFE_INTEGER ? NO : -1 - n;
  }

  /** A scalar value, or NO. */
  scalar(): Scalar | typeof NO {
    if (++this.items > MAX_ITEMS || this.pos >= this.b.length) return NO;
    const b = this.b;
    const ib = b[this.pos++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    if (major === 0) return this.arg(info);
    if (major === 1) {
      const n = this.arg(info);
      return n === NO || n >= Number.MAX_SAFE_INTEGER ? NO : -1 - n;
    }
    if (major === 3) {
      const n = this.arg(info);
      if (n === NO || this.pos + n > b.length) return NO;
      const text = shortText(b, this.pos, this.pos + n);
      this.pos += n;
      return text === undefined ? NO : text;
    }
    if (major !== 7) return NO;
    if (ib === 0xf4) return false;
    if (ib === 0xf5) return true;
    const n = ib === 0xfa ? 4 : ib === 0xfb ? 8 : 0;
    if (n === 0 || this.pos + n > b.length) return NO;
    for (let i = 0; i < n; i++) scratch.setUint8(i, b[this.pos + i]!);
    this.pos += n;
    return n === 4 ? scratch.getFloat32(0) : scratch.getFloat64(0);
  }
}

/** The reading in `payload` (a body), or undefined: not this shape, or not valid; then ask decodeBody. */
export function decodeReadingFast(payload: Uint8Array): FastReading | undefined {
  if (payload.length > MAX_BODY_BYTES) return undefined;
  const r = new Bytes(payload);
  const n = r.container(5);
  if (n === NO || n > 5) return undefined;
  let seen = 0;
  let type: Scalar | undefined;
  let boot: Scalar | undefined;
  let seq: Scalar | undefined;
  let time: Scalar | undefined;
  let records: SenmlRecord[] | undefined;
  for (let i = 0; i < n; i++) {
    const k = r.key();
    if (k === NO || k < 0 || k > 4 || seen & (1 << k)) return undefined;
    seen |= 1 << k;
    if (k === 4) {
      const recs = readRecords(r);
      if (recs === undefined) return undefined;
      records = recs;
      continue;
    }
    const v = r.scalar();
    if (v === NO) return undefined;
    if (k === 0) type = v;
    else if (k === 1) boot = v;
    else if (k === 2) seq = v;
    else time = v;
  }
  if (r.pos !== payload.length || type !== 1 || records === undefined) return undefined;
  if (!isCounter(boot) || !isCounter(seq)) return undefined;
  if (time !== undefined && !isUint(time)) return undefined;
  return time === undefined ? { boot, seq, records } : { boot, seq, time, records };
}

function readRecords(r: Bytes): SenmlRecord[] | undefined {
  const count = r.container(4);
  if (count === NO || count === 0 || count > MAX_RECORDS) return undefined;
  const out: SenmlRecord[] = [];
  for (let i = 0; i < count; i++) {
    const entries = r.container(5);
    if (entries === NO || entries > MAX_RECORD_ENTRIES) return undefined;
    const rec: Record<string, unknown> = {};
    let labels = 0; // labels -16..15 seen (SenML's are -6..8; any other: ask decodeBody)
    for (let j = 0; j < entries; j++) {
      const label = r.key();
      if (label === NO || label < -16 || label > 15) return undefined;
      const bit = 1 << (label + 16);
      if (labels & bit) return undefined;
      labels |= bit;
      const v = r.scalar();
      if (v === NO || readLabel(rec, label, v, i)) return undefined;
    }
    out.push(rec as SenmlRecord);
  }
  return out;
}

const isUint = (v: Scalar | undefined): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isCounter = (v: Scalar | undefined): v is number => isUint(v) && v <= MAX_COUNTER;

/**
 * decodeBody's answer for a stored frame's body, by `decodeReadingFast` where the bytes have its
 * shape: the body and, for a reading, its records resolved (RFC 8428 §4.6); undefined where
 * decodeBody fails.
 */
export function decodeBodyResolved(payload: Uint8Array): { body: Body; resolved?: ResolvedRecord[] } | undefined {
  const fast = decodeReadingFast(payload);
  if (fast) {
    const resolved = resolvePack(fast.records);
    if (resolved.ok) return { body: { type: 'reading', ...fast }, resolved: resolved.value };
  }
  const out: { resolved?: ResolvedRecord[] } = {};
  const body = decodeBody(payload, out);
  return body.ok ? { body: body.value, ...(out.resolved && { resolved: out.resolved }) } : undefined;
}
