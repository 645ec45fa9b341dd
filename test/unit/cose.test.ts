/**
 * COSE_Sign1 (RFC 9052) with EdDSA (RFC 9053 §2.2): the published cose-wg
 * examples, tampering (each a distinct error code), and property tests.
 */
import { createPublicKey, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { encodeCbor, Tagged } from '../../protocols/cbor.js';
import {
  ALG_ED25519,
  ALG_EDDSA,
  decodeSign1,
  encodeSign1,
  MAX_FRAME_BYTES,
  MAX_KID_BYTES,
  sigStructure,
  type Sign1,
} from '../../protocols/cose.js';
import { kidToDeviceId } from '../../protocols/ids.js';
import { ProtocolUsageError } from '../../protocols/result.js';
import { errorCode, hex, isTypedResult, loadJson, okValue, toHex } from './vector-helpers.js';

interface CoseExample {
  plaintext: string;
  key: { crv: string; kid: string; x_hex: string; d_hex: string };
  protected: [number, number][];
  unprotected_kid: string;
  ToBeSign_hex: string;
  output_cbor_hex: string;
}
const examples = loadJson<Record<'eddsa-sig-01' | 'eddsa-sig-02', CoseExample>>('cose-wg-examples.json');
const sig01 = examples['eddsa-sig-01'];
const sig02 = examples['eddsa-sig-02'];
const utf8 = (s: string) => new TextEncoder().encode(s);

const verifySign1 = (pub: Uint8Array, m: Sign1) =>
  verifyEd25519(pub, sigStructure(m.protectedBytes, m.payload), m.signature);

describe('cose-wg/Examples eddsa-sig-01 (Ed25519)', () => {
  const bytes = hex(sig01.output_cbor_hex);
  const pub = hex(sig01.key.x_hex);
  const seed = hex(sig01.key.d_hex);

  // RFC 9052 §4.2: tag 18, [protected bstr, unprotected map, payload, signature].
  it('decodes with the published headers and payload', () => {
    const m = okValue(decodeSign1(bytes));
    expect(m.tagged).toBe(true);
    expect(m.alg).toBe(ALG_EDDSA);
    expect([...m.protectedHeader]).toEqual(sig01.protected);
    expect(new TextDecoder().decode(m.kid)).toBe(sig01.unprotected_kid);
    expect(new TextDecoder().decode(m.payload)).toBe(sig01.plaintext);
    expect(m.signature).toHaveLength(64);
  });

  // RFC 9052 §4.4: ToBeSigned is the Sig_structure over the protected bytes as received.
  it('rebuilds the published ToBeSign bytes', () => {
    const m = okValue(decodeSign1(bytes));
    expect(toHex(sigStructure(m.protectedBytes, m.payload)).toUpperCase()).toBe(sig01.ToBeSign_hex);
  });

  // RFC 9053 §2.2 / RFC 8032 §5.1.7.
  it("verifies with verifyEd25519 under the published key, which is the seed's key", () => {
    expect(toHex(publicKeyFromSeed(seed))).toBe(sig01.key.x_hex);
    expect(verifySign1(pub, okValue(decodeSign1(bytes)))).toBe(true);
  });

  // RFC 8032 §5.1.6: Ed25519 is deterministic, so our encoder must give the same bytes.
  it('re-signing with encodeSign1 reproduces the published message byte for byte', () => {
    const out = encodeSign1(
      { kid: utf8(sig01.unprotected_kid), payload: utf8(sig01.plaintext), protectedExtra: new Map([[3, 0]]) },
      (msg) => signEd25519(seed, msg),
    );
    expect(toHex(out).toUpperCase()).toBe(sig01.output_cbor_hex);
  });
});

describe('cose-wg/Examples eddsa-sig-02 (Ed448)', () => {
  const bytes = hex(sig02.output_cbor_hex);
  const ed448 = createPublicKey({
    key: Buffer.concat([Buffer.from('3043300506032b6571033a00', 'hex'), hex(sig02.key.x_hex)]),
    format: 'der',
    type: 'spki',
  });

  // Our profile is Ed25519: a 114-byte Ed448 signature is refused unless the caller only inspects (anyAlg).
  it('is refused by default for its signature length and decodes with anyAlg', () => {
    expect(errorCode(decodeSign1(bytes))).toBe('cose/bad-signature-length');
    const m = okValue(decodeSign1(bytes, { anyAlg: true }));
    expect(m.alg).toBe(ALG_EDDSA);
    expect(m.signature).toHaveLength(114);
    expect(new TextDecoder().decode(m.kid)).toBe(sig02.unprotected_kid);
  });

  // RFC 9052 §4.4: the Sig_structure does not depend on the curve.
  it('rebuilds the published ToBeSign bytes, and they verify with node:crypto Ed448', () => {
    const m = okValue(decodeSign1(bytes, { anyAlg: true }));
    const tbs = sigStructure(m.protectedBytes, m.payload);
    expect(toHex(tbs).toUpperCase()).toBe(sig02.ToBeSign_hex);
    expect(verify(null, tbs, ed448, m.signature)).toBe(true);
    const other = sigStructure(m.protectedBytes, utf8('This is the content!'));
    expect(verify(null, other, ed448, m.signature)).toBe(false);
  });
});

/** Builds a COSE_Sign1 from parts with the generic encoder (no validation). */
function build(
  prot: unknown,
  unprot: unknown,
  payload: unknown,
  signature: unknown,
  tag: number | null = 18,
): Uint8Array {
  const body = [prot, unprot, payload, signature];
  return encodeCbor(tag === null ? body : new Tagged(tag, body as never));
}
const header = (...entries: [number, unknown][]) => encodeCbor(new Map(entries));

describe('tampering with eddsa-sig-01: each change is caught, each with its own code', () => {
  const good = okValue(decodeSign1(hex(sig01.output_cbor_hex)));
  const pub = hex(sig01.key.x_hex);
  const unprot = new Map([[4, good.kid]]);

  it('changed payload: decodes, signature fails (RFC 9052 §4.4)', () => {
    const m = okValue(decodeSign1(build(good.protectedBytes, unprot, utf8('This is the content!'), good.signature)));
    expect(verifySign1(pub, m)).toBe(false);
  });

  it('re-encoded protected header with the same meaning: signature fails (RFC 9052 §4.4, bytes as received)', () => {
    const reordered = header([3, 0], [1, -8]);
    const m = okValue(decodeSign1(build(reordered, unprot, good.payload, good.signature)));
    expect(m.alg).toBe(ALG_EDDSA);
    expect(verifySign1(pub, m)).toBe(false);
  });

  it('malformed protected header bytes: cose/bad-protected (RFC 9052 §3)', () => {
    for (const prot of [hex('a2012703'), hex('a201270300ff'), hex('820127'), hex('ff')]) {
      expect(errorCode(decodeSign1(build(prot, unprot, good.payload, good.signature)))).toBe('cose/bad-protected');
    }
    // The protected header must be a bstr wrapping the map, not the map itself.
    expect(errorCode(decodeSign1(build(new Map([[1, -8]]), unprot, good.payload, good.signature)))).toBe(
      'cose/bad-protected',
    );
  });

  it('alg changed to ES256 (-7): cose/unsupported-alg (RFC 9053 §2.1)', () => {
    expect(errorCode(decodeSign1(build(header([1, -7], [3, 0]), unprot, good.payload, good.signature)))).toBe(
      'cose/unsupported-alg',
    );
    expect(errorCode(decodeSign1(build(header([1, 'EdDSA']), unprot, good.payload, good.signature)))).toBe(
      'cose/unsupported-alg',
    );
  });

  it('-19 (Ed25519, RFC 9864) is accepted like -8', () => {
    expect(okValue(decodeSign1(build(header([1, ALG_ED25519]), unprot, good.payload, good.signature))).alg).toBe(
      ALG_ED25519,
    );
  });

  // RFC 9052 §3.1: kid is unprotected, so changing it leaves the signature intact;
  // what protects the device is that the gateway looks the key up by kid.
  it("kid changed: decodes with the other kid; the signature fails under that device's key", () => {
    const m = okValue(
      decodeSign1(build(good.protectedBytes, new Map([[4, utf8('12')]]), good.payload, good.signature)),
    );
    expect(kidToDeviceId(m.kid)).toBe('12');
    expect(kidToDeviceId(good.kid)).toBe('11');
    const otherKey = publicKeyFromSeed(new Uint8Array(32).fill(0x12));
    expect(verifySign1(otherKey, m)).toBe(false);
    expect(verifySign1(pub, m)).toBe(true);
  });

  it('other tag or no tag: cose/bad-tag (RFC 9052 §2, tag 18 is COSE_Sign1)', () => {
    for (const tag of [17, 16, 98, 55799, 65536]) {
      expect(errorCode(decodeSign1(build(good.protectedBytes, unprot, good.payload, good.signature, tag)))).toBe(
        'cose/bad-tag',
      );
    }
    const untagged = build(good.protectedBytes, unprot, good.payload, good.signature, null);
    expect(errorCode(decodeSign1(untagged))).toBe('cose/bad-tag');
    const relaxed = okValue(decodeSign1(untagged, { requireTag: false }));
    expect(relaxed.tagged).toBe(false);
    expect(verifySign1(pub, relaxed)).toBe(true);
  });

  it('crit naming a label we do not understand: cose/unknown-critical (RFC 9052 §3.1)', () => {
    const prot = header([1, -8], [2, [99]], [99, 1]);
    expect(errorCode(decodeSign1(build(prot, unprot, good.payload, good.signature)))).toBe('cose/unknown-critical');
    const understood = header([1, -8], [2, [4]]);
    expect(decodeSign1(build(understood, unprot, good.payload, good.signature)).ok).toBe(true);
    const empty = header([1, -8], [2, []]);
    expect(errorCode(decodeSign1(build(empty, unprot, good.payload, good.signature)))).toBe('cose/bad-protected');
  });

  it('crit in the unprotected bucket: cose/bad-unprotected (RFC 9052 §3.1: crit MUST be protected)', () => {
    const u = new Map<number, unknown>([
      [4, good.kid],
      [2, [99]],
    ]);
    expect(errorCode(decodeSign1(build(header([1, -8]), u, good.payload, good.signature)))).toBe(
      'cose/bad-unprotected',
    );
  });

  it('alg in the unprotected header: cose/alg-unprotected; in both: cose/duplicate-label (RFC 9052 §3)', () => {
    const u = new Map<number, unknown>([
      [1, -8],
      [4, good.kid],
    ]);
    expect(errorCode(decodeSign1(build(header([3, 0]), u, good.payload, good.signature)))).toBe('cose/alg-unprotected');
    expect(errorCode(decodeSign1(build(good.protectedBytes, u, good.payload, good.signature)))).toBe(
      'cose/duplicate-label',
    );
  });

  it('signature of 63 or 65 bytes: cose/bad-signature-length (RFC 8032 §5.1.6: 64 bytes)', () => {
    for (const n of [0, 63, 65, 114]) {
      expect(errorCode(decodeSign1(build(good.protectedBytes, unprot, good.payload, new Uint8Array(n))))).toBe(
        'cose/bad-signature-length',
      );
    }
  });

  it('structural errors each have their own code (RFC 9052 §4.2)', () => {
    const { protectedBytes: p, payload: pl, signature: s } = good;
    expect(errorCode(decodeSign1(encodeCbor(new Tagged(18, [p, unprot, pl]))))).toBe('cose/bad-structure');
    expect(errorCode(decodeSign1(encodeCbor(new Tagged(18, new Map([[1, 2]])))))).toBe('cose/bad-structure');
    expect(errorCode(decodeSign1(build(p, [4, good.kid], pl, s)))).toBe('cose/bad-unprotected');
    expect(errorCode(decodeSign1(build(p, unprot, null, s)))).toBe('cose/detached-payload');
    expect(errorCode(decodeSign1(build(p, unprot, 'text', s)))).toBe('cose/bad-payload');
    expect(errorCode(decodeSign1(build(p, unprot, pl, toHex(s))))).toBe('cose/bad-signature-field');
    expect(errorCode(decodeSign1(build(new Uint8Array(0), unprot, pl, s)))).toBe('cose/missing-alg');
    expect(errorCode(decodeSign1(build(header([3, 0]), unprot, pl, s)))).toBe('cose/missing-alg');
  });

  it('kid rules: missing, empty, too long, not bytes (RFC 9052 §3.1: kid is a bstr)', () => {
    const { protectedBytes: p, payload: pl, signature: s } = good;
    expect(errorCode(decodeSign1(build(p, new Map(), pl, s)))).toBe('cose/missing-kid');
    expect(okValue(decodeSign1(build(p, new Map(), pl, s), { requireKid: false })).kid).toHaveLength(0);
    expect(errorCode(decodeSign1(build(p, new Map([[4, new Uint8Array(0)]]), pl, s)))).toBe('cose/bad-kid');
    expect(errorCode(decodeSign1(build(p, new Map([[4, new Uint8Array(MAX_KID_BYTES + 1)]]), pl, s)))).toBe(
      'cose/bad-kid',
    );
    expect(errorCode(decodeSign1(build(p, new Map([[4, '11']]), pl, s)))).toBe('cose/bad-kid');
    // A protected kid is honoured too.
    expect(kidToDeviceId(okValue(decodeSign1(build(header([1, -8], [4, utf8('11')]), new Map(), pl, s))).kid)).toBe(
      '11',
    );
  });

  // DESIGN.md hard limits (frame size)
  it('size limit: larger than maxBytes is cbor/too-large before any parsing', () => {
    const big = build(good.protectedBytes, unprot, new Uint8Array(MAX_FRAME_BYTES), good.signature);
    expect(errorCode(decodeSign1(big))).toBe('cbor/too-large');
    expect(decodeSign1(big, { maxBytes: 8192 }).ok).toBe(true);
  });
});

describe('encodeSign1 refuses misuse with ProtocolUsageError', () => {
  const sign = (m: Uint8Array) => signEd25519(new Uint8Array(32).fill(1), m);
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof ProtocolUsageError ? e.code : `not a ProtocolUsageError: ${String(e)}`;
    }
    return 'did not throw';
  };
  // RFC 9052 §3.1 (kid), RFC 8032 §5.1.6 (64-byte signature), DESIGN.md frame size
  it('bad kid, wrong signature length, too large', () => {
    expect(code(() => encodeSign1({ kid: new Uint8Array(0), payload: new Uint8Array(1) }, sign))).toBe('cose/bad-kid');
    expect(code(() => encodeSign1({ kid: new Uint8Array(65), payload: new Uint8Array(1) }, sign))).toBe('cose/bad-kid');
    expect(code(() => encodeSign1({ kid: utf8('d'), payload: new Uint8Array(1) }, () => new Uint8Array(63)))).toBe(
      'cose/bad-signature-length',
    );
    expect(code(() => encodeSign1({ kid: utf8('d'), payload: new Uint8Array(MAX_FRAME_BYTES) }, sign))).toBe(
      'cose/too-large',
    );
  });
});

describe('COSE_Sign1 properties', () => {
  const seed = new Uint8Array(32).fill(42);
  const pub = publicKeyFromSeed(seed);
  const sign = (m: Uint8Array) => signEd25519(seed, m);
  const anyInput = fc.record({
    kid: fc.uint8Array({ minLength: 1, maxLength: MAX_KID_BYTES }),
    payload: fc.uint8Array({ maxLength: 2000 }),
    alg: fc.constantFrom(ALG_EDDSA, ALG_ED25519),
  });

  // RFC 9052 §4.2-4.4: encode → decode gives back every field, and the signature verifies.
  it('round-trips and verifies', () => {
    fc.assert(
      fc.property(anyInput, ({ kid, payload, alg }) => {
        const m = okValue(decodeSign1(encodeSign1({ kid, payload, alg }, sign)));
        expect(m.alg).toBe(alg);
        expect(toHex(m.kid)).toBe(toHex(kid));
        expect(toHex(m.payload)).toBe(toHex(payload));
        expect(verifySign1(pub, m)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  // The message is written directly (one buffer): byte for byte the CBOR encoder's output.
  it('encodes exactly what the CBOR encoder makes of 18([protected, {4: kid}, payload, signature])', () => {
    const fixedSig = new Uint8Array(64).fill(7);
    fc.assert(
      fc.property(
        fc.record({
          kid: fc.uint8Array({ minLength: 1, maxLength: MAX_KID_BYTES }),
          payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 250, maxLength: 3000 })),
          alg: fc.constantFrom(ALG_EDDSA, ALG_ED25519),
        }),
        ({ kid, payload, alg }) => {
          if (payload.length + kid.length > MAX_FRAME_BYTES - 90) return;
          const protectedBytes = encodeCbor(new Map([[1, alg]]));
          const expected = encodeCbor(new Tagged(18, [protectedBytes, new Map([[4, kid]]), payload, fixedSig]));
          expect(toHex(encodeSign1({ kid, payload, alg }, () => fixedSig))).toBe(toHex(expected));
        },
      ),
      { numRuns: 300 },
    );
  });

  // DESIGN.md "Wire formats": nothing from the wire can crash the process.
  it('random bytes never throw and give ok or a typed cbor/cose error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, requireTag) => {
        expect(isTypedResult(decodeSign1(bytes, { requireTag }), ['cbor', 'cose'])).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  // RFC 9052 §4.2; DESIGN.md: nothing from the wire can crash the process
  it('random bytes behind a COSE_Sign1 head (d2 84) never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        expect(isTypedResult(decodeSign1(new Uint8Array([0xd2, 0x84, ...tail])), ['cbor', 'cose'])).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  // RFC 9052 §4.4: a mutated message never verifies with different signed content.
  it('mutations never throw, and never verify unless protected, payload and signature are unchanged', () => {
    const original = encodeSign1({ kid: utf8('dev-1'), payload: utf8('{"t":21.5}') }, sign);
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        let b = Array.from(original);
        for (const m of ms) {
          const at = m.at % (b.length + 1);
          if (m.kind === 'flip' && at < b.length) b[at]! ^= 1 << m.bit;
          if (m.kind === 'set' && at < b.length) b[at] = m.value;
          if (m.kind === 'cut') b = b.slice(0, at);
          if (m.kind === 'insert') b.splice(at, 0, m.value);
        }
        const r = decodeSign1(new Uint8Array(b));
        expect(isTypedResult(r, ['cbor', 'cose'])).toBe(true);
        if (r.ok && verifySign1(pub, r.value)) {
          const o = okValue(decodeSign1(original));
          expect(toHex(r.value.protectedBytes)).toBe(toHex(o.protectedBytes));
          expect(toHex(r.value.payload)).toBe(toHex(o.payload));
          expect(toHex(r.value.signature)).toBe(toHex(o.signature));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
