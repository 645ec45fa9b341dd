/**
 * The bounded CBOR reader and the standard encoder (protocols/cbor.ts) against
 * RFC 8949: Appendix A examples, Appendix F malformed items, half floats,
 * hard limits, encoder bytes, and property tests.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CborLimits,
  type CborValue,
  decodeCbor,
  decodeHalf,
  DEFAULT_LIMITS,
  encodeCbor,
  Tagged,
} from '../../protocols/cbor.js';
import { errorCode, hex, isTypedResult, loadJson, okValue, toHex } from './vector-helpers.js';

type Typed =
  | { int: string }
  | { float: number | 'NaN' | 'Infinity' | '-Infinity' | '-0' }
  | { bytes: string }
  | { text: string }
  | { bool: boolean }
  | { null: true }
  | { undefined: true }
  | { array: Typed[] }
  | { map: [Typed, Typed][] }
  | { range: [number, number] }
  | { tag: number; value: Typed };

/** The value our decoder must produce for a typed vector value. */
function toValue(t: Typed): CborValue {
  if ('int' in t) {
    const n = BigInt(t.int);
    // Integers in the safe range decode to numbers, the rest to bigints.
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  }
  if ('float' in t) return t.float === '-0' ? -0 : Number(t.float);
  if ('bytes' in t) return hex(t.bytes);
  if ('text' in t) return t.text;
  if ('bool' in t) return t.bool;
  if ('null' in t) return null;
  if ('undefined' in t) return undefined;
  if ('array' in t) return t.array.map(toValue);
  if ('range' in t) return Array.from({ length: t.range[1] - t.range[0] + 1 }, (_, i) => t.range[0] + i);
  if ('map' in t) return new Map(t.map.map(([k, v]) => [toValue(k) as string | number | bigint, toValue(v)]));
  return new Tagged(t.tag, toValue(t.value));
}

/** A strict, order-preserving view of a decoded value for deep comparison. */
function view(v: CborValue): unknown {
  if (typeof v === 'bigint') return { bigint: v.toString() };
  if (typeof v === 'number') return Object.is(v, -0) ? { float: '-0' } : Number.isNaN(v) ? { float: 'NaN' } : v;
  if (v instanceof Uint8Array) return { bytes: toHex(v) };
  if (Array.isArray(v)) return v.map(view);
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [view(k), view(x)]) };
  if (v instanceof Tagged) return { tag: v.tag, value: view(v.value) };
  return v === undefined ? { undefined: true } : v;
}

interface AppendixA {
  cases: {
    hex: string;
    diag: string;
    expect?: Typed;
    error?: string;
    ifAllowed?: Typed & { tag: number };
    encode?: boolean;
  }[];
}
const appendixA = loadJson<AppendixA>('rfc8949-appendix-a.json').cases;

describe('RFC 8949 Appendix A examples (decode)', () => {
  it('covers the 81 examples of RFC 8949 Appendix A', () => {
    expect(appendixA).toHaveLength(81);
  });

  // RFC 8949 Appendix A: each example decodes to its stated value.
  it.each(appendixA.filter((c) => c.expect))('$hex → $diag', (c) => {
    expect(view(okValue(decodeCbor(hex(c.hex))))).toEqual(view(toValue(c.expect!)));
  });

  // RFC 8949 §3.4 / §3.3: tags and unassigned simple values are refused by design (allow-listed tags only).
  it.each(appendixA.filter((c) => c.error))('$hex ($diag) → $error', (c) => {
    expect(errorCode(decodeCbor(hex(c.hex)))).toBe(c.error);
  });

  // RFC 8949 §3.4: once allow-listed, a tag decodes as Tagged(number, content).
  it.each(appendixA.filter((c) => c.ifAllowed))('$hex with tag $ifAllowed.tag allowed → Tagged', (c) => {
    const limits: Partial<CborLimits> = { allowedTags: new Set([c.ifAllowed!.tag]) };
    expect(view(okValue(decodeCbor(hex(c.hex), limits)))).toEqual(view(toValue(c.ifAllowed!)));
  });

  // RFC 8949 §4.2.1 (preferred serialization): integers, strings, arrays and maps
  // encode to exactly the example bytes.
  it.each(appendixA.filter((c) => c.encode))('encodeCbor($diag) = $hex', (c) => {
    expect(toHex(encodeCbor(toValue(c.expect!)))).toBe(c.hex);
  });
});

const appendixF = loadJson<{ group: string; items: string[] }[]>('rfc8949-appendix-f.json');
/** Our code per RFC group; some items hit another error first (noted per item). */
const groupCode: Record<string, string> = {
  'End of input in a head': 'cbor/truncated',
  'Definite-length strings with short data': 'cbor/truncated',
  'Definite-length maps and arrays not closed with enough items': 'cbor/truncated',
  'Tag number not followed by tag content': 'cbor/tag-not-allowed',
  'Indefinite-length strings not closed by a "break" stop code': 'cbor/truncated',
  'Indefinite-length maps and arrays not closed by a "break" stop code': 'cbor/truncated',
  'Reserved additional information values': 'cbor/reserved-info',
  'Reserved two-byte encodings of simple values': 'cbor/unsupported-simple',
  'Indefinite-length string chunks not of the correct type': 'cbor/bad-indefinite',
  'Indefinite-length string chunks not definite length': 'cbor/bad-indefinite',
  'Break occurring on its own outside of an indefinite-length item': 'cbor/unexpected-break',
  'Break occurring in a definite-length array or map or a tag': 'cbor/unexpected-break',
  'Break in an indefinite-length map that would lead to an odd number of items (break in a value position)':
    'cbor/unexpected-break',
  'Major type 0, 1, 6 with additional information 31': 'cbor/bad-indefinite',
};
const itemCode: Record<string, string> = {
  '5affffffff00': 'cbor/too-long', // declared length above maxBytes is refused before reading it
  '5bffffffffffffffff010203': 'cbor/too-long',
  '7affffffff00': 'cbor/too-long',
  '7b7fffffffffffffff010203': 'cbor/too-long',
  a2000000: 'cbor/duplicate-key', // key 0 repeats before the input runs out
  bf01020102: 'cbor/duplicate-key',
  bf000000ff: 'cbor/duplicate-key',
  df: 'cbor/tag-not-allowed', // a tag head with info 31 is not a tag we allow
};

describe('RFC 8949 Appendix F.1: not well-formed items are refused', () => {
  // RFC 8949 Appendix F.1
  it('has all 14 groups', () => expect(appendixF.map((g) => g.group).sort()).toEqual(Object.keys(groupCode).sort()));

  // RFC 8949 Appendix F: a decoder must not accept any of these.
  it.each(appendixF)('$group', ({ group, items }) => {
    for (const h of items) expect([h, errorCode(decodeCbor(hex(h)))]).toEqual([h, itemCode[h] ?? groupCode[group]]);
  });

  // RFC 8949 Appendix F (not well-formed under any decoder settings)
  it('stays refused with every tag allowed and the limits opened wide', () => {
    const wide: Partial<CborLimits> = {
      maxBytes: 2 ** 40,
      maxItems: 1e9,
      maxContainerLength: 1e9,
      allowedTags: new Set([0, 1, 2, 3]),
    };
    for (const { items } of appendixF) for (const h of items) expect(decodeCbor(hex(h), wide).ok, h).toBe(false);
    expect(errorCode(decodeCbor(hex('c0'), wide))).toBe('cbor/truncated');
    expect(errorCode(decodeCbor(hex('5affffffff00'), wide))).toBe('cbor/truncated');
  });
});

describe('half-precision floats (RFC 8949 §3.3, Appendix D)', () => {
  // Independent conversion: widen binary16 to binary32 bits and let DataView decode it.
  function viaFloat32(half: number): number {
    const sign = (half & 0x8000) << 16;
    const exp = (half >> 10) & 0x1f;
    let mant = half & 0x3ff;
    let bits: number;
    if (exp === 0x1f) bits = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    else if (mant === 0) bits = sign;
    else {
      let e = -14;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits = sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13);
    }
    const dv = new DataView(new ArrayBuffer(4));
    dv.setUint32(0, bits >>> 0);
    return dv.getFloat32(0);
  }

  // RFC 8949 §3.3, Appendix D
  it('decodeHalf agrees with a binary32 widening for all 65536 bit patterns', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) if (!Object.is(decodeHalf(h >> 8, h & 0xff), viaFloat32(h))) wrong.push(h);
    expect(wrong).toEqual([]);
  });

  // RFC 8949 Appendix D; IEEE 754 binary16
  it('known values: smallest subnormal, largest normal, ±0, ±Infinity, NaN', () => {
    expect(decodeHalf(0x00, 0x01)).toBe(2 ** -24);
    expect(decodeHalf(0x03, 0xff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(decodeHalf(0x7b, 0xff)).toBe(65504);
    expect(Object.is(decodeHalf(0x80, 0x00), -0)).toBe(true);
    expect(decodeHalf(0xfc, 0x00)).toBe(-Infinity);
    expect(Number.isNaN(decodeHalf(0x7e, 0x00))).toBe(true);
    expect(okValue(decodeCbor(hex('f93555')))).toBe(0.333251953125);
  });
});

describe('hard limits', () => {
  const nested = (open: number, n: number, leaf = [0x00]) =>
    new Uint8Array([...new Array<number>(n).fill(open), ...leaf]);

  // DESIGN.md "Wire formats": hard limits on frame size; RFC 8949 §10 (resource exhaustion)
  it('maxBytes: longer input is cbor/too-large, equal is fine; empty is cbor/truncated', () => {
    expect(decodeCbor(hex('1903e8'), { maxBytes: 3 }).ok).toBe(true);
    expect(errorCode(decodeCbor(hex('1a000f4240'), { maxBytes: 4 }))).toBe('cbor/too-large');
    expect(errorCode(decodeCbor(new Uint8Array(DEFAULT_LIMITS.maxBytes + 1)))).toBe('cbor/too-large');
    expect(errorCode(decodeCbor(new Uint8Array(0)))).toBe('cbor/truncated');
  });

  // DESIGN.md hard limits (nesting); RFC 8949 §10
  it('maxDepth counts arrays, maps and tags', () => {
    expect(decodeCbor(nested(0x81, 16)).ok).toBe(true);
    expect(errorCode(decodeCbor(nested(0x81, 17)))).toBe('cbor/too-deep');
    expect(errorCode(decodeCbor(nested(0xa1, 3, [0x00, 0x00, 0x00, 0x00]), { maxDepth: 2 }))).toBe('cbor/too-deep');
    expect(errorCode(decodeCbor(nested(0xd2, 3), { maxDepth: 2, allowedTags: new Set([18]) }))).toBe('cbor/too-deep');
    expect(decodeCbor(nested(0xd2, 2), { maxDepth: 2, allowedTags: new Set([18]) }).ok).toBe(true);
  });

  // DESIGN.md: nothing from the wire can crash the process
  it('nesting far past the JS stack is a typed error, not a crash', () => {
    const deep = nested(0x81, 500_000);
    expect(errorCode(decodeCbor(deep, { maxBytes: deep.length, maxDepth: 1e9, maxItems: 1e9 }))).toBe('cbor/too-deep');
  });

  // DESIGN.md hard limits; RFC 8949 §10
  it('maxItems counts every data item, containers included', () => {
    const ten = encodeCbor([1, 2, 3, 4, 5, 6, 7, 8, 9]); // the array and 9 integers
    expect(decodeCbor(ten, { maxItems: 10 }).ok).toBe(true);
    expect(errorCode(decodeCbor(ten, { maxItems: 9 }))).toBe('cbor/too-many-items');
    expect(
      errorCode(
        decodeCbor(
          encodeCbor(
            new Map([
              [1, 2],
              [3, 4],
            ]),
          ),
          { maxItems: 4 },
        ),
      ),
    ).toBe('cbor/too-many-items');
  });

  // DESIGN.md hard limits (array lengths); RFC 8949 §3.2.2 (indefinite length)
  it('maxContainerLength: exactly the limit is accepted in definite and indefinite form, one more is not', () => {
    const lim = { maxContainerLength: 5 };
    expect(decodeCbor(hex('850102030405'), lim).ok).toBe(true);
    expect(errorCode(decodeCbor(hex('86010203040506'), lim))).toBe('cbor/too-long');
    expect(decodeCbor(hex('9f0102030405ff'), lim).ok).toBe(true);
    expect(errorCode(decodeCbor(hex('9f010203040506ff'), lim))).toBe('cbor/too-long');
    expect(decodeCbor(hex('bf01010202030304040505ff'), lim).ok).toBe(true);
    expect(errorCode(decodeCbor(hex('bf010102020303040405050606ff'), lim))).toBe('cbor/too-long');
  });

  // RFC 8949 §10 (lengths must be checked against the input); Appendix F.1
  it('huge declared lengths with few bytes are refused up front, without reading or allocating', () => {
    for (const h of [
      '9bffffffffffffffff',
      'bbffffffffffffffff',
      '9a7fffffff',
      '99ffff',
      'b9ffff',
      '5bffffffffffffffff00',
      '7b0000000100000000',
      '5a00ffffff',
    ]) {
      expect([h, errorCode(decodeCbor(hex(h)))]).toEqual([h, 'cbor/too-long']);
    }
    // Within maxBytes but past the end of input: truncated.
    expect(errorCode(decodeCbor(hex('5a00003000010203')))).toBe('cbor/truncated');
    expect(errorCode(decodeCbor(hex('9903ff01')))).toBe('cbor/truncated');
  });

  it('indefinite-length strings are joined; chunks must match and each text chunk must be UTF-8 (RFC 8949 §3.2.3)', () => {
    expect(toHex(okValue(decodeCbor(hex('5f404101ff'))) as Uint8Array)).toBe('01');
    expect(okValue(decodeCbor(hex('7f6161606162ff')))).toBe('ab');
    expect(okValue(decodeCbor(hex('7f62c3bcff')))).toBe('ü');
    expect(errorCode(decodeCbor(hex('7f61c361bcff')))).toBe('cbor/bad-utf8'); // ü split across chunks
    expect(errorCode(decodeCbor(hex('5f4101')))).toBe('cbor/truncated');
  });

  it('duplicate map keys are refused, however the key is encoded (RFC 8949 §5.6)', () => {
    expect(errorCode(decodeCbor(hex('a201010102')))).toBe('cbor/duplicate-key');
    expect(errorCode(decodeCbor(hex('a2616101616102')))).toBe('cbor/duplicate-key');
    expect(errorCode(decodeCbor(hex('a20101180102')))).toBe('cbor/duplicate-key'); // 1 and non-shortest 1
    expect(errorCode(decodeCbor(hex('bf2001380002ff')))).toBe('cbor/duplicate-key'); // -1 twice
    expect(view(okValue(decodeCbor(hex('a20101613101'))))).toEqual({
      map: [
        [1, 1],
        ['1', 1],
      ],
    }); // 1 ≠ "1"
  });

  // RFC 8949 §5.6 (1 and 1.0 are different keys); COSE labels are int / tstr (RFC 9052 §3)
  it('map keys must be integers or text: floats, bytes, arrays, simple values are cbor/bad-map-key', () => {
    for (const h of ['a1f93c0002', 'a1fb3ff000000000000002', 'a1410102', 'a1800102', 'a1f502', 'a1f602']) {
      expect([h, errorCode(decodeCbor(hex(h)))]).toEqual([h, 'cbor/bad-map-key']);
    }
    expect(view(okValue(decodeCbor(hex('a11bffffffffffffffff01'))))).toEqual({
      map: [[{ bigint: '18446744073709551615' }, 1]],
    });
  });

  // one data item per input (more would be a CBOR sequence, RFC 8742); RFC 8949 §5.3.1 (invalid UTF-8); §3.1 (major types 0/1 range)
  it('trailing bytes, invalid UTF-8, integer range edges', () => {
    expect(errorCode(decodeCbor(hex('0000')))).toBe('cbor/trailing-bytes');
    expect(errorCode(decodeCbor(hex('62c328')))).toBe('cbor/bad-utf8');
    expect(okValue(decodeCbor(hex('1b001fffffffffffff')))).toBe(Number.MAX_SAFE_INTEGER);
    expect(okValue(decodeCbor(hex('1b0020000000000000')))).toBe(2n ** 53n);
    expect(okValue(decodeCbor(hex('3b001ffffffffffffe')))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(okValue(decodeCbor(hex('3b001fffffffffffff')))).toBe(-(2n ** 53n));
  });
});

describe('encoder bytes (RFC 8949 §4.2.1 preferred serialization, no cbor-x extensions)', () => {
  // RFC 8949 §3.1 major types 2 and 5 (no cbor-x tags 64 / 259)
  it('byte strings are plain major type 2, never tag 64; maps are plain major type 5, never tag 259', () => {
    expect(toHex(encodeCbor(new Uint8Array([1, 2, 3])))).toBe('43010203');
    expect(
      toHex(
        encodeCbor(
          new Map<unknown, unknown>([
            [1, 'a'],
            ['b', 2],
          ]),
        ),
      ),
    ).toBe('a2016161616202');
    expect(toHex(encodeCbor(new Map()))).toBe('a0');
  });

  // RFC 9052 §4.4: protected bytes are signed as written, so order must be ours
  it('map insertion order is the wire order', () => {
    expect(
      toHex(
        encodeCbor(
          new Map([
            [3, 0],
            [1, -8],
          ]),
        ),
      ),
    ).toBe('a203000127');
  });

  // RFC 8949 §3.1 major types 0/1, §4.2.1 preferred serialization
  it('integers beyond 32 bits use major type 0/1 heads, not floats', () => {
    expect(toHex(encodeCbor(2 ** 32))).toBe('1b0000000100000000');
    expect(toHex(encodeCbor(-(2 ** 32) - 1))).toBe('3b0000000100000000');
    expect(toHex(encodeCbor(Number.MAX_SAFE_INTEGER))).toBe('1b001fffffffffffff');
    expect(toHex(encodeCbor(-Number.MAX_SAFE_INTEGER))).toBe('3b001ffffffffffffe');
    expect(toHex(encodeCbor(2n ** 63n))).toBe('1b8000000000000000');
    expect(toHex(encodeCbor(new Map([[2 ** 40, 1]])))).toBe('a11b000001000000000001');
  });

  // RFC 8949 §4.2.1 (shortest head); §3.3 floats
  it('small bigints get the shortest head; integer-valued doubles beyond 2^53 stay floats', () => {
    expect(toHex(encodeCbor(5n))).toBe('05');
    expect(toHex(encodeCbor(-(2n ** 32n)))).toBe('3affffffff');
    expect(toHex(encodeCbor(1e300))).toBe('fb7e37e43c8800759c');
    expect(okValue(decodeCbor(encodeCbor(3.4028234663852886e38)))).toBe(3.4028234663852886e38);
    expect(okValue(decodeCbor(encodeCbor(2 ** 60)))).toBe(2 ** 60);
  });

  // RFC 8949 §3.3
  it('non-integers are floats that decode to the same number', () => {
    for (const x of [1.1, -4.1, 0.5, 1e-300, Number.MIN_VALUE, Infinity, -Infinity])
      expect(okValue(decodeCbor(encodeCbor(x)))).toBe(x);
    expect(Number.isNaN(okValue(decodeCbor(encodeCbor(NaN))))).toBe(true);
  });

  // RFC 8949 §3.1: text strings are UTF-8; a lone UTF-16 surrogate cannot be written as-is.
  it('text is always valid UTF-8: lone surrogates become U+FFFD, pairs are kept', () => {
    expect(toHex(encodeCbor('\uD800'))).toBe('63efbfbd');
    expect(toHex(encodeCbor('a\u{1F600}'))).toBe('6561f09f9880');
    expect(okValue(decodeCbor(encodeCbor(new Map([['k\uDC00', 1]]))))).toEqual(new Map([['k\uFFFD', 1]]));
  });

  // RFC 8949 §3.4
  it('Tagged becomes a tag head', () => {
    expect(toHex(encodeCbor(new Tagged(18, [1])))).toBe('d28101');
    expect(toHex(encodeCbor(new Tagged(1, 1363896240)))).toBe('c11a514b67b0');
  });
});

// Values that survive encode → decode unchanged in type and value.
const key = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.string({ maxLength: 8 }));
const bigOutsideSafe = fc.oneof(
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: -(2n ** 64n) + 1n, max: -(2n ** 53n) - 1n }),
);
const { value: arbValue } = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    bigOutsideSafe,
    fc.double().filter((d) => !Object.is(d, -0)),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.uint8Array({ maxLength: 20 }),
    fc.constantFrom(true, false, null, undefined),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(key, tie('value')), { maxLength: 5, selector: ([k]) => k }).map((es) => new Map(es)),
  ),
}));

describe('CBOR properties', () => {
  // RFC 8949 §2 (data model round trip)
  it('encode → decode gives back the same value, types and map order included', () => {
    fc.assert(
      fc.property(arbValue, (v) => {
        expect(view(okValue(decodeCbor(encodeCbor(v))))).toEqual(view(v));
      }),
      { numRuns: 1000 },
    );
  });

  // RFC 8949 §4.2 (deterministic encoding)
  it('encoding is stable: decode then encode again gives the same bytes', () => {
    fc.assert(
      fc.property(arbValue, (v) => {
        const once = encodeCbor(v);
        expect(toHex(encodeCbor(okValue(decodeCbor(once))))).toBe(toHex(once));
      }),
      { numRuns: 500 },
    );
  });

  // RFC 8949 §3.1 (text strings are UTF-8)
  it('any JS string encodes to text that decodes like TextEncoder/TextDecoder would read it', () => {
    fc.assert(
      // Arbitrary UTF-16 code units, so lone surrogates occur (fc.string never makes them).
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }).map((u) => String.fromCharCode(...u)),
        (str) => {
          expect(okValue(decodeCbor(encodeCbor(str)))).toBe(new TextDecoder().decode(new TextEncoder().encode(str)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  // DESIGN.md: nothing from the wire can crash the process.
  it('random bytes never throw and give ok or a typed cbor/* error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(isTypedResult(decodeCbor(b), ['cbor'])).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  // DESIGN.md: decoders return typed errors under any limits
  it('random bytes under random limits and allowed tags never throw', () => {
    const limits = fc.record({
      maxBytes: fc.integer({ min: 0, max: 300 }),
      maxDepth: fc.integer({ min: 0, max: 20 }),
      maxItems: fc.integer({ min: 0, max: 100 }),
      maxContainerLength: fc.integer({ min: 0, max: 50 }),
      allowedTags: fc.array(fc.nat(300)).map((t) => new Set(t)),
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), limits, (b, l) => {
        expect(isTypedResult(decodeCbor(b, l), ['cbor'])).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  // DESIGN.md: nothing from the wire can crash the process
  it('mutated valid encodings never throw', () => {
    fc.assert(
      fc.property(
        arbValue,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (v, edits, cut) => {
          const b = encodeCbor(v).slice();
          for (const [at, x] of edits) b[at % b.length] = x;
          expect(isTypedResult(decodeCbor(b), ['cbor'])).toBe(true);
          expect(isTypedResult(decodeCbor(b.subarray(0, cut % (b.length + 1))), ['cbor'])).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
