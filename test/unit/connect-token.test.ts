/**
 * The MQTT CONNECT token (protocols/connect-token.ts): round trip, signature
 * over the Sig_structure, bounded decoding of any input, strict base64url.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import {
  base64urlDecode,
  base64urlEncode,
  decodeConnectToken,
  encodeConnectToken,
  MAX_CONNECT_TOKEN_CHARS,
} from '../../protocols/connect-token.js';
import { signBody } from '../../protocols/frame.js';
import { ProtocolUsageError } from '../../protocols/result.js';

const seed = randomBytes(32);
const pub = publicKeyFromSeed(seed);
const sign = (m: Uint8Array) => signEd25519(seed, m);
const idArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);

describe('connect token', () => {
  it('round-trips its claims and its signature verifies under the signer key only', () => {
    fc.assert(
      fc.property(idArb, idArb, fc.integer({ min: 0, max: 2 ** 48 }), (subject, audience, time) => {
        const text = encodeConnectToken({ subject, audience, time }, sign);
        expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(text.length).toBeLessThanOrEqual(MAX_CONNECT_TOKEN_CHARS);
        const t = decodeConnectToken(text);
        if (!t.ok) throw new Error(t.error.message);
        expect(t.value).toMatchObject({ subject, audience, time });
        expect(verifyEd25519(pub, t.value.signed, t.value.signature)).toBe(true);
        expect(verifyEd25519(publicKeyFromSeed(randomBytes(32)), t.value.signed, t.value.signature)).toBe(false);
        // the password as MQTT carries it (bytes) decodes the same
        expect(decodeConnectToken(new TextEncoder().encode(text))).toEqual(t);
      }),
      { numRuns: 100 },
    );
  });

  it('takes a did:key as subject', () => {
    const did = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const t = decodeConnectToken(encodeConnectToken({ subject: did, audience: 'gw-1', time: 1 }, sign));
    expect(t.ok && t.value.subject).toBe(did);
  });

  // The kid (subject) is unprotected, as in frames: it only selects the key that must verify.
  it('changes the signed bytes with the audience and the time', () => {
    const base = { subject: 'dev-1', audience: 'gw-1', time: 1_700_000_000_000 };
    const signed = (c: typeof base) => {
      const t = decodeConnectToken(encodeConnectToken(c, sign));
      return t.ok ? Buffer.from(t.value.signed).toString('hex') : '';
    };
    const s0 = signed(base);
    expect(signed({ ...base, audience: 'gw-2' })).not.toBe(s0);
    expect(signed({ ...base, time: base.time + 1 })).not.toBe(s0);
  });

  it('decodes any text or bytes to a typed result, never throwing', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 })), (input) => {
        const r = decodeConnectToken(input);
        if (!r.ok) expect(r.error.code).toMatch(/^(token|cose|cbor)\//);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a signed frame as a token (type 5 only), and over-long or non-base64url text', () => {
    const frame = signBody({ type: 'reading', boot: 1, seq: 1, records: [{ n: 't', v: 1 }] }, 'dev-1', sign);
    const r = decodeConnectToken(base64urlEncode(frame));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toMatch(/^(token\/bad-body|token\/bad-type|cose\/)/);
    expect(decodeConnectToken('A'.repeat(MAX_CONNECT_TOKEN_CHARS + 1)).ok).toBe(false);
    expect(!decodeConnectToken('abc$').ok && 'ok').toBe('ok');
    expect(decodeConnectToken('')).toMatchObject({ ok: false, error: { code: 'token/empty' } });
  });

  it('throws ProtocolUsageError for bad claims', () => {
    expect(() => encodeConnectToken({ subject: '', audience: 'gw', time: 1 }, sign)).toThrow(ProtocolUsageError);
    expect(() => encodeConnectToken({ subject: 'd', audience: 'g w', time: 1 }, sign)).toThrow(ProtocolUsageError);
    expect(() => encodeConnectToken({ subject: 'd', audience: 'gw', time: -1 }, sign)).toThrow(ProtocolUsageError);
  });
});

describe('base64url', () => {
  it('matches node for any bytes and decodes back; only canonical text decodes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const t = base64urlEncode(b);
        expect(t).toBe(Buffer.from(b).toString('base64url'));
        expect(base64urlDecode(t)).toEqual(b);
      }),
    );
    expect(base64urlDecode('AB')).toBeUndefined(); // spare bits set
    expect(base64urlDecode('AA')).toEqual(new Uint8Array([0]));
    expect(base64urlDecode('A')).toBeUndefined();
    expect(base64urlDecode('AA==')).toBeUndefined();
  });
});
