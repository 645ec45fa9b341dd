/**
 * Confidential blocks: the sealed-body and keys-body codecs
 * (protocols/sealed.ts) and the crypto around them (gateway/policy/seal.ts):
 * round trips, the header bound as AAD, key wraps that open only for their
 * recipient, and decoders that never throw on arbitrary input.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Block,
  type CborValue,
  decodeCbor,
  decodeKeysBody,
  decodeSealedBody,
  decodeSignedBlock,
  encodeCanonical,
  type FrameEntry,
  keysBodyValue,
  type SealAlg,
  sealedBodyValue,
  signBlock,
  toHex,
} from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import {
  newDataKey,
  openBlock,
  sealBlock,
  unwrapDataKey,
  wrapDataKey,
  x25519FromEd25519Seed,
} from '../../gateway/policy/seal.js';

const seed = randomBytes(32);
const author = publicKeyFromSeed(seed);
const sign = (m: Uint8Array): Uint8Array => signEd25519(seed, m);
const reader = (() => {
  const s = randomBytes(32);
  return { publicKey: publicKeyFromSeed(s), x25519Secret: x25519FromEd25519Seed(s) };
})();
const other = (() => {
  const s = randomBytes(32);
  return { publicKey: publicKeyFromSeed(s), x25519Secret: x25519FromEd25519Seed(s) };
})();

const hashArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const frameArb: fc.Arbitrary<FrameEntry> = fc.record({
  frame: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  rxTime: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  transport: fc.constantFrom('mqtt', 'serial', 'ble'),
});
const algArb = fc.constantFrom<SealAlg>('aes-256-gcm', 'xchacha20-poly1305');
const blockArb: fc.Arbitrary<Block> = fc
  .record({
    seq: fc.nat({ max: 2 ** 40 }),
    lamport: fc.nat({ max: 2 ** 40 }),
    prev: hashArb,
    parents: fc.uniqueArray(hashArb, { maxLength: 4, selector: (h) => toHex(h) }),
    body: fc.array(frameArb, { minLength: 1, maxLength: 6 }),
  })
  .map(({ seq, prev, ...r }) => ({
    author,
    stream: 'doors',
    policy: 'doors',
    kind: 'frames' as const,
    seq: seq + 1,
    prev,
    ...r,
  }));

describe('sealed blocks', () => {
  it('seal then open gives the same block back, for both ciphers (device frames stay verbatim)', () => {
    fc.assert(
      fc.property(blockArb, algArb, (b, alg) => {
        const dk = newDataKey(3);
        const sealed = sealBlock(b, dk, alg);
        expect(sealed.kind).toBe('sealed');
        // The signed envelope round-trips like any block: a relay can decode and chain-check it.
        const sb = signBlock(sealed, sign);
        const back = decodeSignedBlock(sb.envelope);
        expect(back.ok).toBe(true);
        const opened = openBlock(back.ok ? back.value.block : sealed, dk.key);
        expect(opened.ok && opened.value).toEqual({ ...b, parents: [...b.parents].sort(Buffer.compare) });
        // The ciphertext holds none of the frame bytes in clear.
        for (const f of b.body as FrameEntry[])
          if (f.frame.length >= 16) expect(Buffer.from(sb.envelope).includes(Buffer.from(f.frame))).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('the header is bound as AAD: a sealed body moved under another header, or opened with another key, fails', () => {
    fc.assert(
      fc.property(
        blockArb,
        algArb,
        fc.constantFrom('seq', 'lamport', 'policy', 'stream', 'prev', 'author'),
        (b, alg, field) => {
          const dk = newDataKey(0);
          const sealed = sealBlock(b, dk, alg);
          const moved: Block = {
            ...sealed,
            ...(field === 'seq' && { seq: sealed.seq + 1 }),
            ...(field === 'lamport' && { lamport: sealed.lamport + 1 }),
            ...(field === 'policy' && { policy: 'other' }),
            ...(field === 'stream' && { stream: 'other' }),
            ...(field === 'prev' && { prev: new Uint8Array(32).fill(7) }),
            ...(field === 'author' && { author: reader.publicKey }),
          } as Block;
          const r = openBlock(moved, dk.key);
          expect(!r.ok && r.error.code).toBe('sealed/auth-failed');
          const wrong = openBlock(sealed, newDataKey(0).key);
          expect(!wrong.ok && wrong.error.code).toBe('sealed/auth-failed');
        },
      ),
      { numRuns: 40 },
    );
  });

  it('sealed body codec round-trips and its decoder never throws (fast-check)', () => {
    const bodyArb = fc
      .record({
        kind: fc.constantFrom('frames' as const, 'enrolment' as const, 'policy' as const),
        epoch: fc.nat({ max: 0xffffffff }),
        alg: algArb,
        ciphertext: fc.uint8Array({ minLength: 16, maxLength: 200 }),
      })
      .chain((r) =>
        fc
          .uint8Array({ minLength: r.alg === 'aes-256-gcm' ? 12 : 24, maxLength: r.alg === 'aes-256-gcm' ? 12 : 24 })
          .map((nonce) => ({ ...r, nonce })),
      );
    fc.assert(
      fc.property(bodyArb, (s) => {
        const bytes = encodeCanonical(sealedBodyValue(s));
        const v = decodeCbor(bytes);
        const back = decodeSealedBody(v.ok ? v.value : null);
        expect(back.ok && back.value).toEqual(s);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        const v = decodeCbor(bytes);
        if (v.ok) {
          expect(() => decodeSealedBody(v.value)).not.toThrow();
          expect(() => decodeKeysBody(v.value)).not.toThrow();
        }
      }),
    );
  });

  it('refuses malformed sealed bodies with typed codes', () => {
    const good = sealedBodyValue({
      kind: 'frames',
      epoch: 1,
      alg: 'aes-256-gcm',
      nonce: new Uint8Array(12),
      ciphertext: new Uint8Array(16),
    }) as Map<number, CborValue>;
    const variant = (k: number, v: CborValue): CborValue => new Map(good).set(k, v);
    const code = (v: CborValue): string | undefined => {
      const r = decodeSealedBody(v);
      return r.ok ? undefined : r.error.code;
    };
    expect(code([1, 2])).toBe('sealed/bad-body');
    expect(code(variant(1, 7))).toBe('sealed/bad-kind'); // a sealed block inside a sealed block
    expect(code(variant(2, -1))).toBe('sealed/bad-epoch');
    expect(code(variant(3, 9))).toBe('sealed/unknown-alg');
    expect(code(variant(4, new Uint8Array(24)))).toBe('sealed/bad-nonce');
    expect(code(variant(5, new Uint8Array(3)))).toBe('sealed/bad-ciphertext');
    expect(code(variant(6, 1))).toBe('sealed/bad-body');
  });
});

describe('key wraps', () => {
  it('a wrap opens for each recipient and no one else; it is bound to author, policy and epoch', () => {
    const dk = newDataKey(5);
    const body = wrapDataKey(author, 'doors', dk, [reader.publicKey, author]);
    const block = {
      author,
      stream: 'doors',
      policy: 'doors',
      seq: 0,
      lamport: 1,
      prev: null,
      parents: [],
      kind: 'keys' as const,
      body: keysBodyValue(body) as CborValue,
    };
    const sb = signBlock(block, sign);
    const got = decodeSignedBlock(sb.envelope);
    expect(got.ok).toBe(true);
    const r = unwrapDataKey(got.ok ? got.value.block : block, reader);
    expect(r.ok && r.value && toHex(r.value.key)).toBe(toHex(dk.key));
    expect(r.ok && r.value?.epoch).toBe(5);
    const none = unwrapDataKey(block, other);
    expect(none.ok && none.value).toBeUndefined();
    // Same wraps under another policy name: the AAD no longer matches.
    const moved = unwrapDataKey({ ...block, policy: 'vibration' }, reader);
    expect(!moved.ok && moved.error.code).toBe('keys/auth-failed');
    // A low-order ephemeral key (all zeros) gives an all-zero shared secret: refused, not used.
    const zero = keysBodyValue({ ...body, ephemeral: new Uint8Array(32) }) as CborValue;
    const low = unwrapDataKey({ ...block, body: zero }, reader);
    expect(!low.ok && low.error.code).toBe('keys/bad-ephemeral');
    // Another recipient's secret pretending to be the reader.
    const stolen = unwrapDataKey(block, { publicKey: reader.publicKey, x25519Secret: other.x25519Secret });
    expect(!stolen.ok && stolen.error.code).toBe('keys/auth-failed');
  });

  it('keys body codec round-trips (fast-check), wraps sorted and unique', () => {
    const wrapArb = fc.record({
      recipient: hashArb,
      nonce: fc.uint8Array({ minLength: 24, maxLength: 24 }),
      wrapped: fc.uint8Array({ minLength: 48, maxLength: 48 }),
    });
    fc.assert(
      fc.property(
        fc.nat({ max: 1000 }),
        hashArb,
        fc.uniqueArray(wrapArb, { minLength: 1, maxLength: 8, selector: (w) => toHex(w.recipient) }),
        (epoch, ephemeral, wraps) => {
          const v = decodeCbor(encodeCanonical(keysBodyValue({ epoch, ephemeral, wraps })));
          const back = decodeKeysBody(v.ok ? v.value : null);
          expect(back.ok && back.value).toEqual({
            epoch,
            ephemeral,
            wraps: [...wraps].sort((a, b) => Buffer.compare(a.recipient, b.recipient)),
          });
        },
      ),
    );
    const w = { recipient: new Uint8Array(32), nonce: new Uint8Array(24), wrapped: new Uint8Array(48) };
    expect(() => keysBodyValue({ epoch: 0, ephemeral: new Uint8Array(32), wraps: [w, w] })).toThrow(/one recipient/);
    expect(() => keysBodyValue({ epoch: 0, ephemeral: new Uint8Array(32), wraps: [] })).toThrow(/1\.\.256/);
    const unsorted = new Map<number, CborValue>([
      [1, 0],
      [2, new Uint8Array(32)],
      [
        3,
        [
          [new Uint8Array(32).fill(2), w.nonce, w.wrapped],
          [new Uint8Array(32).fill(1), w.nonce, w.wrapped],
        ],
      ],
    ]);
    const r = decodeKeysBody(unsorted);
    expect(!r.ok && r.error.code).toBe('keys/bad-wraps');
  });
});
