/**
 * CBOR (RFC 8949) for the wire formats.
 *
 * Decoding untrusted bytes goes through our own bounded reader: every length
 * is checked against the bytes that remain, nesting depth, item count and
 * container sizes have hard limits, only allow-listed tags pass, and the
 * result is a `Result`, never an exception. Encoding uses cbor-x configured
 * for plain standard CBOR (no records, no tag 64 on byte strings, no tag 259
 * on maps), so what we sign is what any CBOR library would produce.
 */
import { Encoder, type Options, Tag } from 'cbor-x';
import { decodeUtf8 } from './bytes.js';
import { fail, ok, type Result } from './result.js';

/** A tagged item (RFC 8949 §3.4) whose tag the caller allowed. */
export class Tagged {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

export type CborKey = number | bigint | string;
export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborValue[]
  | Map<CborKey, CborValue>
  | Tagged;

export interface CborLimits {
  /** Largest input accepted at all. */
  readonly maxBytes: number;
  /** Deepest nesting of arrays, maps and tags. */
  readonly maxDepth: number;
  /** Total data items in the input (guards against many tiny items). */
  readonly maxItems: number;
  /** Longest single array or map. */
  readonly maxContainerLength: number;
  /** Tags that may appear; any other tag is an error. */
  readonly allowedTags: ReadonlySet<number>;
}

export const DEFAULT_LIMITS: CborLimits = {
  maxBytes: 16 * 1024,
  maxDepth: 16,
  maxItems: 4096,
  maxContainerLength: 1024,
  allowedTags: new Set(),
};

class CborFault {
  constructor(
    readonly code: string,
    readonly message: string,
  ) {}
}

const BREAK = Symbol('break');

class Reader {
  pos = 0;
  items = 0;
  private readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly limits: CborLimits,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (n > this.buf.length - this.pos) {
      throw new CborFault(
        'cbor/truncated',
        `need ${n} byte(s) at offset ${this.pos}, ${this.buf.length - this.pos} left`,
      );
    }
  }

  private byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  /** Reads the argument of an initial byte; returns -1 for indefinite length. */
  private argument(info: number): number | bigint {
    if (info < 24) return info;
    const view = this.view;
    switch (info) {
      case 24:
        return this.byte();
      case 25: {
        this.need(2);
        const v = view.getUint16(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = view.getUint32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = view.getBigUint64(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 31:
        return -1;
      default:
        throw new CborFault('cbor/reserved-info', `reserved additional info ${info} at offset ${this.pos - 1}`);
    }
  }

  private length(info: number, what: string): number {
    const n = this.argument(info);
    if (typeof n === 'bigint' || n > this.limits.maxBytes) {
      throw new CborFault('cbor/too-long', `${what} length ${n} exceeds ${this.limits.maxBytes}`);
    }
    return n;
  }

  item(depth: number): CborValue | typeof BREAK {
    if (++this.items > this.limits.maxItems) {
      throw new CborFault('cbor/too-many-items', `more than ${this.limits.maxItems} data items`);
    }
    const start = this.pos;
    const ib = this.byte();
    const major = ib >> 5;
    const info = ib & 0x1f;
    switch (major) {
      case 0: {
        const n = this.argument(info);
        if (n === -1) throw new CborFault('cbor/bad-indefinite', `indefinite integer at offset ${start}`);
        return n;
      }
      case 1: {
        const n = this.argument(info);
        if (n === -1) throw new CborFault('cbor/bad-indefinite', `indefinite integer at offset ${start}`);
        if (typeof n === 'bigint') return -1n - n;
        return n >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(n) : -1 - n;
      }
      case 2:
      case 3: {
        const bytes = this.stringBytes(major, info, start);
        if (major === 2) return bytes;
        const text = decodeUtf8(bytes);
        if (text === undefined) throw new CborFault('cbor/bad-utf8', `invalid UTF-8 in text string at offset ${start}`);
        return text;
      }
      case 4:
        return this.array(info, depth, start);
      case 5:
        return this.map(info, depth, start);
      case 6: {
        const tag = this.argument(info);
        if (tag === -1 || typeof tag === 'bigint' || !this.limits.allowedTags.has(tag)) {
          throw new CborFault('cbor/tag-not-allowed', `tag ${String(tag)} at offset ${start} is not allowed here`);
        }
        this.depth(depth + 1);
        const inner = this.item(depth + 1);
        if (inner === BREAK) throw new CborFault('cbor/unexpected-break', `break after tag at offset ${start}`);
        return new Tagged(tag, inner);
      }
      default:
        return this.simple(info, start);
    }
  }

  private depth(d: number): void {
    if (d > this.limits.maxDepth) throw new CborFault('cbor/too-deep', `nesting deeper than ${this.limits.maxDepth}`);
  }

  private stringBytes(major: number, info: number, start: number): Uint8Array {
    const n = this.length(info, 'string');
    if (n >= 0) {
      this.need(n);
      const out = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      return out;
    }
    // Indefinite-length string: definite chunks of the same major type until break (RFC 8949 §3.2.3).
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const cb = this.byte();
      if (cb === 0xff) break;
      if (cb >> 5 !== major || (cb & 0x1f) === 31) {
        throw new CborFault('cbor/bad-indefinite', `bad chunk in indefinite string at offset ${start}`);
      }
      const len = this.length(cb & 0x1f, 'string chunk');
      this.need(len);
      const chunk = this.buf.subarray(this.pos, this.pos + len);
      // RFC 8949 §3.2.3: each chunk of a text string is itself a valid text string,
      // so a UTF-8 sequence cannot be split across chunks.
      if (major === 3 && decodeUtf8(chunk) === undefined) {
        throw new CborFault('cbor/bad-utf8', `invalid UTF-8 in a text chunk at offset ${this.pos}`);
      }
      chunks.push(chunk);
      this.pos += len;
      total += len;
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  private count(info: number, start: number, what: string): number {
    const n = this.argument(info);
    if (n === -1) return -1;
    if (typeof n === 'bigint' || n > this.limits.maxContainerLength) {
      throw new CborFault(
        'cbor/too-long',
        `${what} of ${n} entries at offset ${start} exceeds ${this.limits.maxContainerLength}`,
      );
    }
    return n;
  }

  private array(info: number, depth: number, start: number): CborValue[] {
    this.depth(depth + 1);
    const n = this.count(info, start, 'array');
    const out: CborValue[] = [];
    for (let i = 0; n < 0 || i < n; i++) {
      const v = this.item(depth + 1);
      if (v === BREAK) {
        if (n < 0) return out;
        throw new CborFault('cbor/unexpected-break', `break inside definite array at offset ${start}`);
      }
      // Only an indefinite-length array can get here with a full array (a definite
      // one was checked against the limit up front); the break was checked first so
      // that exactly maxContainerLength items are accepted in both forms.
      if (out.length >= this.limits.maxContainerLength) {
        throw new CborFault('cbor/too-long', `array at offset ${start} exceeds ${this.limits.maxContainerLength}`);
      }
      out.push(v);
    }
    return out;
  }

  private map(info: number, depth: number, start: number): Map<CborKey, CborValue> {
    this.depth(depth + 1);
    const n = this.count(info, start, 'map');
    const out = new Map<CborKey, CborValue>();
    for (let i = 0; n < 0 || i < n; i++) {
      const keyAt = this.pos;
      const k = this.item(depth + 1);
      if (k === BREAK) {
        if (n < 0) return out;
        throw new CborFault('cbor/unexpected-break', `break inside definite map at offset ${start}`);
      }
      if (out.size >= this.limits.maxContainerLength) {
        throw new CborFault('cbor/too-long', `map at offset ${start} exceeds ${this.limits.maxContainerLength}`);
      }
      // Keys must be integers (major types 0 and 1) or text (major type 3). A float
      // key such as 1.0 decodes to the JS number 1 and would otherwise pass as the
      // integer label 1, which is a different CBOR key (RFC 8949 §5.6).
      const keyMajor = this.buf[keyAt]! >> 5;
      if ((typeof k !== 'number' && typeof k !== 'bigint' && typeof k !== 'string') || keyMajor === 7) {
        throw new CborFault('cbor/bad-map-key', `map key at offset ${keyAt} is not an integer or text`);
      }
      if (out.has(k)) throw new CborFault('cbor/duplicate-key', `duplicate map key ${String(k)} at offset ${keyAt}`);
      const v = this.item(depth + 1);
      if (v === BREAK) throw new CborFault('cbor/unexpected-break', `map key without value at offset ${keyAt}`);
      out.set(k, v);
    }
    return out;
  }

  private simple(info: number, start: number): CborValue | typeof BREAK {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24:
        // One-byte simple value (RFC 8949 §3.3): none is supported, but a missing
        // byte is reported as truncation like any other short head.
        this.need(1);
        throw new CborFault(
          'cbor/unsupported-simple',
          `simple value ${this.buf[this.pos]} at offset ${start} is not supported`,
        );
      case 25: {
        this.need(2);
        const v = decodeHalf(this.buf[this.pos]!, this.buf[this.pos + 1]!);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.view.getFloat32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.view.getFloat64(this.pos);
        this.pos += 8;
        return v;
      }
      case 28:
      case 29:
      case 30:
        throw new CborFault('cbor/reserved-info', `reserved additional info ${info} at offset ${start}`);
      case 31:
        return BREAK;
      default:
        throw new CborFault(
          'cbor/unsupported-simple',
          `simple value (info ${info}) at offset ${start} is not supported`,
        );
    }
  }
}

/** IEEE 754 binary16 to number (RFC 8949 Appendix D). */
export function decodeHalf(hi: number, lo: number): number {
  const half = (hi << 8) | lo;
  const exp = (half >> 10) & 0x1f;
  const mant = half & 0x3ff;
  let val: number;
  if (exp === 0) val = mant * 2 ** -24;
  else if (exp !== 31) val = (mant + 1024) * 2 ** (exp - 25);
  else val = mant === 0 ? Infinity : NaN;
  return half & 0x8000 ? -val : val;
}

/**
 * Decodes exactly one CBOR data item filling `bytes`, within `limits`.
 * Never throws for malformed input.
 */
export function decodeCbor(bytes: Uint8Array, limits: Partial<CborLimits> = {}): Result<CborValue> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  if (bytes.length > lim.maxBytes)
    return fail('cbor/too-large', `input of ${bytes.length} bytes exceeds ${lim.maxBytes}`);
  if (bytes.length === 0) return fail('cbor/truncated', 'empty input');
  const r = new Reader(bytes, lim);
  try {
    const v = r.item(0);
    if (v === BREAK) return fail('cbor/unexpected-break', 'break code at top level');
    if (r.pos !== bytes.length)
      return fail('cbor/trailing-bytes', `${bytes.length - r.pos} byte(s) after the data item`);
    return ok(v);
  } catch (e) {
    if (e instanceof CborFault) return fail(e.code, e.message);
    if (e instanceof RangeError) return fail('cbor/too-deep', 'nesting too deep');
    throw e;
  }
}

/** Standard CBOR encoder: plain maps, plain byte strings, no cbor-x extensions. */
// useTag259ForMaps exists in cbor-x but is missing from its typings.
const encoderOptions: Options & { useTag259ForMaps: boolean } = {
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  useTag259ForMaps: false,
  pack: false,
  structuredClone: false,
  variableMapSize: true,
};
const encoder = new Encoder(encoderOptions);

/**
 * Encodes a value as standard CBOR. Byte strings must be Uint8Array; maps are `Map`s
 * (insertion order is the wire order); `Tagged` becomes a CBOR tag.
 */
export function encodeCbor(value: unknown): Uint8Array {
  const out = encoder.encode(prepare(value));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

// cbor-x writes integers beyond 32 bits as float64; a bigint makes it use a
// major type 0/1 head, which is what a reader expecting an integer needs.
// Only safe integers are converted: a larger integer-valued double (1e300,
// 3.4e38) is a float, and as a bigint cbor-x would write a tag 2/3 bignum.
// Bigints that fit 32 bits go back to numbers so they get the shortest head
// (cbor-x writes every bigint with an 8-byte argument).
// A JS string may hold lone UTF-16 surrogates, which cbor-x would write as
// invalid UTF-8 (ED A0 80...) that no strict reader, ours included, accepts
// (RFC 8949 §3.1: text strings are UTF-8). They become U+FFFD, as with TextEncoder.
const LONE_SURROGATE = /\p{Surrogate}/u;
function prepare(v: unknown): unknown {
  if (typeof v === 'string') return LONE_SURROGATE.test(v) ? v.replace(/\p{Surrogate}/gu, '\uFFFD') : v;
  if (typeof v === 'number') return Number.isSafeInteger(v) && (v > 0xffffffff || v < -0x100000000) ? BigInt(v) : v;
  if (typeof v === 'bigint') return v <= 0xffffffffn && v >= -0x100000000n ? Number(v) : v;
  if (Array.isArray(v)) return v.map(prepare);
  if (v instanceof Map) {
    const m = new Map();
    for (const [k, x] of v) m.set(prepare(k), prepare(x));
    return m;
  }
  if (v instanceof Tagged) return new Tag(prepare(v.value), v.tag);
  return v;
}

/** Helpers for reading decoded maps with integer labels. */
export const isMap = (v: CborValue): v is Map<CborKey, CborValue> => v instanceof Map;
export const isBytes = (v: CborValue): v is Uint8Array => v instanceof Uint8Array;
export const isUint = (v: CborValue): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
