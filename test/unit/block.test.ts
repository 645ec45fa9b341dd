/**
 * Log blocks (protocols/block.ts): canonical CBOR (RFC 8949 §4.2.1) determinism,
 * round trips, the detached author signature, and a decoder that never throws.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Block,
  blockSigningInput,
  decodeBlock,
  decodeCbor,
  decodeSignedBlock,
  encodeBlock,
  encodeCanonical,
  encodeCbor,
  type FrameEntry,
  sha256,
  signBlock,
  toHex,
} from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';

const seed = randomBytes(32);
const author = publicKeyFromSeed(seed);
const sign = (m: Uint8Array): Uint8Array => signEd25519(seed, m);

const hashArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const nameArb = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/\p{Surrogate}/u.test(s));
const frameArb: fc.Arbitrary<FrameEntry> = fc.record({
  frame: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  rxTime: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  transport: fc.constantFrom('mqtt', 'serial', 'ble'),
});
const reservedBody: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.string().filter((s) => !/\p{Surrogate}/u.test(s)),
    fc.uint8Array({ maxLength: 20 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc
      .array(
        fc.tuple(
          fc.oneof(
            fc.integer(),
            fc.string({ maxLength: 6 }).filter((s) => !/\p{Surrogate}/u.test(s)),
          ),
          tie('v'),
        ),
        { maxLength: 4 },
      )
      .map((es) => new Map(es)),
  ),
})).v;

const blockArb: fc.Arbitrary<Block> = fc
  .record({
    stream: nameArb,
    policy: nameArb,
    seq: fc.nat({ max: 2 ** 40 }),
    lamport: fc.nat({ max: 2 ** 40 }),
    prev: hashArb,
    parents: fc.uniqueArray(hashArb, { maxLength: 5, selector: (h) => toHex(h) }),
    content: fc.oneof(
      fc.array(frameArb, { minLength: 1, maxLength: 5 }).map((body) => ({ kind: 'frames' as const, body })),
      fc
        .record({
          device: nameArb,
          publicKey: hashArb,
          enrolledAt: fc.nat(),
          revokedAt: fc.option(fc.nat(), { nil: undefined }),
          site: fc.option(
            fc.string({ maxLength: 10 }).filter((s) => !/\p{Surrogate}/u.test(s)),
            { nil: undefined },
          ),
        })
        .map(({ revokedAt, site, ...e }) => ({
          kind: 'enrolment' as const,
          body: { ...e, ...(revokedAt !== undefined && { revokedAt }), ...(site !== undefined && { site }) },
        })),
      fc
        .tuple(fc.constantFrom('policy', 'rule', 'actuation') as fc.Arbitrary<'policy'>, reservedBody)
        .map(([kind, body]) => ({ kind, body })),
      // Retention: low is drawn as a fraction of seq below (a mark never passes its own block).
      fc
        .record({ lowPart: fc.double({ min: 0, max: 1, noNaN: true }), cutoff: fc.nat() })
        .map((r) => ({ kind: 'retention' as const, body: r })),
    ),
  })
  .map(({ prev, content, ...h }) => {
    const c =
      content.kind === 'retention'
        ? {
            kind: 'retention' as const,
            body: {
              stream: h.stream,
              low: Math.floor((content.body as { lowPart: number }).lowPart * h.seq),
              cutoff: (content.body as { cutoff: number }).cutoff,
            },
          }
        : content;
    return { author, ...h, prev: h.seq === 0 ? null : prev, ...c } as Block;
  });

/** Reorders map entries (recursively) so insertion order differs from canonical order. */
function shuffleMaps(v: unknown, rnd: () => number): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffleMaps(x, rnd));
  if (v instanceof Map) {
    const es = [...v].map(([k, x]) => [k, shuffleMaps(x, rnd)] as const);
    es.sort(() => rnd() - 0.5);
    return new Map(es);
  }
  return v;
}

describe('canonical CBOR', () => {
  it('RFC 8949 §4.2.1: shortest heads and bytewise-sorted keys', () => {
    expect(toHex(encodeCanonical(23))).toBe('17');
    expect(toHex(encodeCanonical(24))).toBe('1818');
    expect(toHex(encodeCanonical(255))).toBe('18ff');
    expect(toHex(encodeCanonical(256))).toBe('190100');
    expect(toHex(encodeCanonical(65536))).toBe('1a00010000');
    expect(toHex(encodeCanonical(2 ** 32))).toBe('1b0000000100000000');
    expect(toHex(encodeCanonical(-1))).toBe('20');
    expect(toHex(encodeCanonical(-25))).toBe('3818');
    // §4.2.1: 10, 100, -1, "z", "aa", [100], [-1], false (length-first falls out of bytewise order)
    const keys = new Map<number | string, number>([
      ['aa', 5],
      ['z', 4],
      [-1, 3],
      [100, 2],
      [10, 1],
    ]);
    expect(toHex(encodeCanonical(keys))).toBe('a50a011864022003617a0462616105');
  });

  it('refuses floats, bigints and undefined', () => {
    expect(() => encodeCanonical(1.5)).toThrow();
    expect(() => encodeCanonical(10n as never)).toThrow();
    expect(() => encodeCanonical(undefined as never)).toThrow();
  });

  it('matches cbor-x where cbor-x is already canonical, and decodes back', () => {
    fc.assert(
      fc.property(reservedBody, (v) => {
        const bytes = encodeCanonical(v as never);
        const back = decodeCbor(bytes, { maxItems: 100000, maxDepth: 64 });
        expect(back.ok).toBe(true);
        expect(encodeCanonical(back.ok ? back.value : null)).toEqual(bytes);
      }),
    );
  });

  it('is deterministic: map insertion order never changes the bytes', () => {
    fc.assert(
      fc.property(reservedBody, fc.integer(), (v, s) => {
        let x = s;
        const rnd = (): number => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
        expect(encodeCanonical(shuffleMaps(v, rnd) as never)).toEqual(encodeCanonical(v as never));
      }),
    );
  });
});

describe('blocks', () => {
  it('round trip: decode(encode(b)) re-encodes to the same bytes and hash', () => {
    fc.assert(
      fc.property(blockArb, (b) => {
        const bytes = encodeBlock(b);
        const d = decodeBlock(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        expect(encodeBlock(d.value)).toEqual(bytes);
        expect(d.value.seq).toBe(b.seq);
        expect(d.value.kind).toBe(b.kind);
      }),
      { numRuns: 300 },
    );
  });

  it('determinism: parents order and reserved-body map order do not change the bytes', () => {
    fc.assert(
      fc.property(blockArb, (b) => {
        const rev = {
          ...b,
          parents: [...b.parents].reverse(),
          ...(b.kind !== 'frames' &&
            b.kind !== 'enrolment' &&
            b.kind !== 'retention' && { body: shuffleMaps(b.body, Math.random) }),
        } as Block;
        expect(encodeBlock(rev)).toEqual(encodeBlock(b));
      }),
    );
  });

  it('signed envelope: hash is SHA-256 of the block bytes, signature over domain ‖ hash', () => {
    fc.assert(
      fc.property(blockArb, (b) => {
        const sb = signBlock(b, sign);
        expect(sb.hash).toEqual(sha256(sb.bytes));
        expect(verifyEd25519(author, blockSigningInput(sb.hash), sb.signature)).toBe(true);
        const d = decodeSignedBlock(sb.envelope);
        expect(d.ok && toHex(d.value.hash)).toBe(toHex(sb.hash));
      }),
      { numRuns: 50 },
    );
  });

  it('decoded with the hash it was stored under: the same block when the bytes still hash to it, hash-mismatch when not', () => {
    fc.assert(
      fc.property(blockArb, fc.nat(), (b, at) => {
        const sb = signBlock(b, sign);
        const d = decodeSignedBlock(sb.envelope, sb.hash);
        expect(d.ok && toHex(d.value.bytes)).toBe(toHex(sb.bytes));
        const full = decodeBlock(sb.bytes);
        expect(d.ok && full.ok && d.value.block).toEqual(full.ok && full.value);
        const other = Uint8Array.from(sb.hash);
        other[at % 32]! ^= 1;
        const r = decodeSignedBlock(sb.envelope, other);
        expect(r.ok ? 'ok' : r.error.code).toBe('block/hash-mismatch');
      }),
      { numRuns: 50 },
    );
  });

  it('refuses an envelope in any but its one byte form (long heads, indefinite bytes), checked by its length', () => {
    fc.assert(
      fc.property(blockArb, (b) => {
        const sb = signBlock(b, sign);
        const n = sb.bytes.length;
        const sig = sb.signature;
        const forms = [
          // array head 0x98 02, not 0x82
          Uint8Array.from([0x98, 0x02, ...sb.envelope.subarray(1)]),
          // the block's byte string with a 4-byte length head
          Uint8Array.from([
            0x82,
            0x5a,
            n >>> 24,
            (n >>> 16) & 0xff,
            (n >>> 8) & 0xff,
            n & 0xff,
            ...sb.bytes,
            0x58,
            64,
            ...sig,
          ]),
          // the signature's with a 2-byte length head
          Uint8Array.from([...sb.envelope.subarray(0, sb.envelope.length - 66), 0x59, 0, 64, ...sig]),
          // the block's byte string as an indefinite-length string of one chunk
          Uint8Array.from([0x82, 0x5f, ...sb.envelope.subarray(1, sb.envelope.length - 66), 0xff, 0x58, 64, ...sig]),
        ];
        for (const f of forms) {
          const r = decodeSignedBlock(f);
          expect(r.ok ? 'ok' : r.error.code).toBe('block/non-canonical');
        }
        expect(decodeSignedBlock(sb.envelope).ok).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses non-canonical encodings of a valid block (one block, one hash)', () => {
    const b: Block = {
      author,
      stream: 'default',
      seq: 0,
      lamport: 1,
      prev: null,
      parents: [],
      policy: 'default',
      kind: 'frames',
      body: [{ frame: Uint8Array.of(1, 2, 3), rxTime: 1700000000000, transport: 'mqtt' }],
    };
    const bytes = encodeBlock(b);
    expect(decodeBlock(bytes).ok).toBe(true);
    // Same content through cbor-x with keys in reverse order.
    const d = decodeCbor(bytes);
    if (!d.ok) throw new Error('decode');
    const reordered = new Map([...(d.value as Map<number, unknown>)].reverse());
    const other = encodeCbor(reordered);
    expect(toHex(other)).not.toBe(toHex(bytes));
    const r = decodeBlock(other);
    expect(r.ok ? 'ok' : r.error.code).toBe('block/non-canonical');
    // A non-shortest head (seq 0 as 0x1800).
    const i = toHex(bytes).indexOf('03000401') / 2; // key 3 (seq) 0, key 4 (lamport) 1
    expect(i).toBeGreaterThan(0);
    const long = new Uint8Array([...bytes.subarray(0, i + 1), 0x18, 0x00, ...bytes.subarray(i + 2)]);
    const r2 = decodeBlock(long);
    expect(r2.ok ? 'ok' : r2.error.code).toBe('block/non-canonical');
  });

  it('typed errors for bad blocks', () => {
    const code = (v: unknown): string => {
      const r = decodeBlock(encodeCanonical(v as never));
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code([1])).toBe('block/not-a-map');
    expect(code(new Map([[0, 2]]))).toBe('block/bad-version');
    expect(code(new Map([[42, 2]]))).toBe('block/unknown-key');
  });

  it('retention (kind 6): typed body round trips; a mark past its own seq or naming another stream is refused', () => {
    // per-stream low-water marks as signed retention blocks
    fc.assert(
      fc.property(nameArb, fc.nat({ max: 2 ** 40 }), fc.nat({ max: 2 ** 40 }), fc.nat(), (stream, a, b, cutoff) => {
        const [low, seq] = a <= b ? [a, b] : [b, a];
        const blk: Block = {
          author,
          stream,
          seq,
          lamport: seq + 1,
          prev: seq === 0 ? null : new Uint8Array(32),
          parents: [],
          policy: stream,
          kind: 'retention',
          body: { stream, low, cutoff },
        };
        const d = decodeBlock(encodeBlock(blk));
        expect(d.ok && d.value.kind === 'retention' && d.value.body).toEqual({ stream, low, cutoff });
      }),
      { numRuns: 300 },
    );
    const base = {
      author,
      stream: 's',
      seq: 5,
      lamport: 6,
      prev: new Uint8Array(32),
      parents: [],
      policy: 's',
      kind: 'retention' as const,
    };
    expect(() => encodeBlock({ ...base, body: { stream: 's', low: 6, cutoff: 0 } })).toThrow(/own seq/);
    expect(() => encodeBlock({ ...base, body: { stream: 'other', low: 1, cutoff: 0 } })).toThrow(/own stream/);
    // The same refusals from the wire: a result, not an exception.
    const raw = (body: unknown): string => {
      const bytes = encodeBlock({ ...base, kind: 'policy', body: body as never });
      bytes[bytes.indexOf(0x08, bytes.length - 30) + 1] = 0x06; // patch kind 3 → 6 (key 8 sits just before the body)
      const r = decodeBlock(bytes);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(
      raw(
        new Map<number, unknown>([
          [1, 's'],
          [2, 3],
          [3, 0],
        ]),
      ),
    ).toBe('ok');
    expect(
      raw(
        new Map<number, unknown>([
          [1, 's'],
          [2, 9],
          [3, 0],
        ]),
      ),
    ).toBe('block/bad-body');
    expect(
      raw(
        new Map<number, unknown>([
          [1, 'x'],
          [2, 1],
          [3, 0],
        ]),
      ),
    ).toBe('block/bad-body');
    expect(
      raw(
        new Map<number, unknown>([
          [1, 's'],
          [2, 1],
        ]),
      ),
    ).toBe('block/bad-body');
    expect(raw(['s', 1, 0])).toBe('block/bad-body');
  });

  it('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const a = decodeBlock(bytes);
        const b = decodeSignedBlock(bytes);
        expect(typeof a.ok).toBe('boolean');
        expect(typeof b.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid blocks never throw', () => {
    const sb = signBlock(
      {
        author,
        stream: 'default',
        seq: 3,
        lamport: 9,
        prev: new Uint8Array(32),
        parents: [new Uint8Array(32).fill(1)],
        policy: 'default',
        kind: 'frames',
        body: [{ frame: Uint8Array.of(1, 2, 3), rxTime: 1, transport: 'ble' }],
      },
      sign,
    );
    fc.assert(
      fc.property(fc.nat(sb.envelope.length - 1), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const m = Uint8Array.from(sb.envelope);
        m[i] = v;
        const r = decodeSignedBlock(m);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
