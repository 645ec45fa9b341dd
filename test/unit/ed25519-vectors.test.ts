/**
 * Ed25519 through our verify path (enrolment check in protocols/keys.ts, then
 * node:crypto in gateway/crypto/ed25519.ts) against independent vectors:
 * Wycheproof, the reference sign.input, and @noble/ed25519 as a second signer.
 */
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { checkEd25519PublicKey } from '../../protocols/keys.js';
import { errorCode, hex, loadJson, readVector, toHex } from './vector-helpers.js';

ed.hashes.sha512 = (m) => new Uint8Array(createHash('sha512').update(m).digest());

interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface WycheproofFile {
  numberOfTests: number;
  testGroups: { publicKey: { pk: string; curve: string }; tests: WycheproofTest[] }[];
}

const wycheproof = loadJson<WycheproofFile>('wycheproof-ed25519_test.json');
const cases = wycheproof.testGroups.flatMap((g) =>
  g.tests.map((t) => ({ ...t, pk: g.publicKey.pk, curve: g.publicKey.curve })),
);

/** The gateway's decision for one frame signature: enrol the key, then verify. */
function accepts(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  return checkEd25519PublicKey(pk).ok && verifyEd25519(pk, msg, sig);
}

describe('Wycheproof Ed25519 through enrolment + verifyEd25519', () => {
  // Wycheproof eddsa_verify_schema_v1
  it('has every case of the file, all for edwards25519, none "acceptable"', () => {
    expect(cases).toHaveLength(wycheproof.numberOfTests);
    expect(cases.length).toBe(151);
    expect(new Set(cases.map((c) => c.curve))).toEqual(new Set(['edwards25519']));
    // With no "acceptable" cases every verdict below is a hard requirement.
    expect(cases.filter((c) => c.result === 'acceptable')).toEqual([]);
  });

  // RFC 8032 §5.1.7: a "valid" case verifies, an "invalid" one (bad encodings,
  // s ≥ L, truncated or padded signatures, wrong message) is rejected.
  it.each(cases)('tcId $tcId ($result): $comment', (c) => {
    const pk = hex(c.pk);
    expect(accepts(pk, hex(c.msg), hex(c.sig))).toBe(c.result === 'valid');
  });

  // DESIGN.md "Identities and trust": enrolment must not refuse any key a
  // Wycheproof "valid" case relies on.
  it('enrols the public key of every valid case', () => {
    const refused = cases
      .filter((c) => c.result === 'valid' && !checkEd25519PublicKey(hex(c.pk)).ok)
      .map((c) => c.tcId);
    expect(refused).toEqual([]);
  });

  // Cross-check: @noble/ed25519 agrees on every valid case (RFC 8032 §5.1.7).
  it('valid cases also verify with @noble/ed25519', () => {
    const disagree = cases
      .filter((c) => c.result === 'valid' && !ed.verify(hex(c.sig), hex(c.msg), hex(c.pk)))
      .map((c) => c.tcId);
    expect(disagree).toEqual([]);
  });
});

interface SignLine {
  line: number;
  seed: Uint8Array;
  pk: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
}

function parseSignInput(text: string): SignLine[] {
  const out: SignLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const f = raw.split(':');
    if (f.length !== 5 || f[4] !== '')
      throw new Error(`sign.input line ${i + 1}: expected 4 fields and a trailing colon`);
    const [skpk, pkHex, msgHex, sigMsg] = f as [string, string, string, string];
    const seed = hex(skpk.slice(0, 64));
    if (skpk.slice(64) !== pkHex) throw new Error(`sign.input line ${i + 1}: sk||pk does not end with pk`);
    if (sigMsg.slice(128) !== msgHex) throw new Error(`sign.input line ${i + 1}: sig||msg does not end with msg`);
    out.push({ line: i + 1, seed, pk: hex(pkHex), msg: hex(msgHex), sig: hex(sigMsg.slice(0, 128)) });
  });
  return out;
}

describe('ed25519 reference sign.input', () => {
  const lines = parseSignInput(readVector('ed25519-sign.input'));

  it('has 1024 lines, the first being RFC 8032 §7.1 TEST 1', () => {
    expect(lines).toHaveLength(1024);
    expect(toHex(lines[0]!.pk)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(lines[0]!.msg).toHaveLength(0);
  });

  // RFC 8032 §5.1.5 (key generation) and §5.1.6 (signing is deterministic).
  it('node:crypto derives each public key and reproduces each signature exactly', () => {
    const wrong: string[] = [];
    for (const l of lines) {
      if (toHex(publicKeyFromSeed(l.seed)) !== toHex(l.pk)) wrong.push(`line ${l.line}: public key`);
      if (toHex(signEd25519(l.seed, l.msg)) !== toHex(l.sig)) wrong.push(`line ${l.line}: signature`);
    }
    expect(wrong).toEqual([]);
  });

  // RFC 8032 §5.1.7 through our full path, and the keys are enrolable.
  it('every vector signature is accepted by enrolment + verifyEd25519', () => {
    const rejected = lines.filter((l) => !accepts(l.pk, l.msg, l.sig)).map((l) => l.line);
    expect(rejected).toEqual([]);
  });

  // The verifier is not a constant "true": one flipped bit in the message, in R,
  // in S, or in the key must each make it refuse (RFC 8032 §5.1.7).
  it('rejects every vector after a one-bit change to message, R, S or key', () => {
    const accepted: string[] = [];
    for (const l of lines) {
      const bit = l.line % 8;
      const sigR = l.sig.slice();
      sigR[l.line % 32]! ^= 1 << bit;
      const sigS = l.sig.slice();
      sigS[32 + (l.line % 31)]! ^= 1 << bit; // stays below the top byte so S is not just made ≥ L
      const pk = l.pk.slice();
      pk[l.line % 31]! ^= 1 << bit;
      const msg = l.msg.length > 0 ? l.msg.slice() : new Uint8Array([0]);
      if (l.msg.length > 0) msg[l.line % l.msg.length]! ^= 1 << bit;
      if (verifyEd25519(l.pk, msg, l.sig)) accepted.push(`line ${l.line}: message`);
      if (verifyEd25519(l.pk, l.msg, sigR)) accepted.push(`line ${l.line}: R`);
      if (verifyEd25519(l.pk, l.msg, sigS)) accepted.push(`line ${l.line}: S`);
      if (accepts(pk, l.msg, l.sig)) accepted.push(`line ${l.line}: key`);
    }
    expect(accepted).toEqual([]);
  });

  // DESIGN.md: firmware-sim signs with @noble/ed25519, the gateway verifies with
  // node:crypto. Both must produce RFC 8032 signatures (§5.1.6) the other accepts.
  it('@noble/ed25519 signatures equal the vectors and verify with node:crypto', () => {
    const wrong: string[] = [];
    for (const l of lines) {
      const sig = ed.sign(l.msg, l.seed);
      if (toHex(ed.getPublicKey(l.seed)) !== toHex(l.pk)) wrong.push(`line ${l.line}: noble public key`);
      if (toHex(sig) !== toHex(l.sig)) wrong.push(`line ${l.line}: noble signature`);
      if (!verifyEd25519(l.pk, l.msg, sig)) wrong.push(`line ${l.line}: node:crypto rejects noble's signature`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('verifyEd25519 input handling', () => {
  const l = parseSignInput(readVector('ed25519-sign.input').split('\n').slice(1, 2).join('\n'))[0]!;

  // RFC 8032 §5.1.7: a signature is exactly 64 bytes and a key exactly 32; anything else is refused, not thrown.
  it('returns false (never throws) for wrong lengths and for bytes that are not a key', () => {
    expect(verifyEd25519(l.pk, l.msg, l.sig)).toBe(true);
    expect(verifyEd25519(l.pk, l.msg, l.sig.subarray(0, 63))).toBe(false);
    expect(verifyEd25519(l.pk, l.msg, new Uint8Array([...l.sig, 0]))).toBe(false);
    expect(verifyEd25519(l.pk.subarray(0, 31), l.msg, l.sig)).toBe(false);
    expect(verifyEd25519(new Uint8Array(33), l.msg, l.sig)).toBe(false);
    expect(verifyEd25519(hex('02'.padEnd(64, '0')), l.msg, l.sig)).toBe(false); // y = 2 is not on the curve
  });
});

interface SpecialKeys {
  smallOrder: { hex: string; order: number; note: string }[];
  nonCanonical: { hex: string; note: string }[];
  notOnCurve: { hex: string; note: string }[];
}
const special = loadJson<SpecialKeys>('ed25519-special-keys.json');

describe('enrolment rejects weak public keys (checkEd25519PublicKey)', () => {
  // RFC 8032 §5.1.3 + DESIGN.md: points of small order are refused at enrolment.
  it.each(special.smallOrder)('small order $order: $hex', ({ hex: h, order }) => {
    // Independent check of the vector itself: [order]P is the identity and no smaller power of two is.
    const p = ed.Point.fromBytes(hex(h), true);
    expect(p.multiplyUnsafe(BigInt(order)).is0()).toBe(true);
    if (order > 1) expect(p.multiplyUnsafe(BigInt(order / 2)).is0()).toBe(false);
    expect(errorCode(checkEd25519PublicKey(hex(h)))).toBe('key/small-order');
  });

  // RFC 8032 §5.1 (the torsion subgroup has order 8)
  it('the eight small-order encodings are distinct and cover orders 1, 2, 4, 8', () => {
    expect(new Set(special.smallOrder.map((k) => k.hex)).size).toBe(8);
    expect(special.smallOrder.map((k) => k.order).sort()).toEqual([1, 2, 4, 4, 8, 8, 8, 8]);
  });

  // Why enrolment matters: OpenSSL accepts R = identity, S = 0 under the identity
  // key for any message, so only the enrolment check stands between such a key and forgery.
  it('node:crypto alone accepts a forged signature under the identity key; the full path does not', () => {
    const identity = hex(special.smallOrder[0]!.hex);
    const forged = new Uint8Array([...identity, ...new Uint8Array(32)]);
    const msg = new TextEncoder().encode('any message at all');
    expect(verifyEd25519(identity, msg, forged)).toBe(true);
    expect(accepts(identity, msg, forged)).toBe(false);
  });

  // RFC 8032 §5.1.3 step 1-4: y ≥ p, and x = 0 with the sign bit set, are not canonical.
  it.each(special.nonCanonical)('non-canonical: $note', ({ hex: h }) => {
    expect(errorCode(checkEd25519PublicKey(hex(h)))).toBe('key/non-canonical');
  });

  // RFC 8032 §5.1.3 step 1 (y ≥ p is a decoding failure)
  it('y = p+3 and y = p+18 are refused for the encoding only: the reduced encodings are good keys', () => {
    const p = 2n ** 255n - 19n;
    for (const k of [3n, 18n]) {
      const le = (v: bigint) => Uint8Array.from({ length: 32 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
      expect(errorCode(checkEd25519PublicKey(le(p + k)))).toBe('key/non-canonical');
      expect(checkEd25519PublicKey(le(k)).ok).toBe(true);
    }
  });

  // RFC 8032 §5.1.3 step 3 (no square root: decoding fails)
  it.each(special.notOnCurve)('not a curve point: $note', ({ hex: h }) => {
    const b = hex(h);
    expect(() => ed.Point.fromBytes(b, true)).toThrow();
    expect(errorCode(checkEd25519PublicKey(b))).toBe('key/non-canonical');
    b[31]! |= 0x80;
    expect(errorCode(checkEd25519PublicKey(b))).toBe('key/non-canonical');
  });

  // RFC 8032 §5.1.5 (public keys are 32 bytes)
  it('wrong lengths are key/bad-length', () => {
    for (const n of [0, 31, 33, 64]) expect(errorCode(checkEd25519PublicKey(new Uint8Array(n)))).toBe('key/bad-length');
  });
});
