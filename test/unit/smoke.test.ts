import { describe, expect, it } from 'vitest';
import { decodeSign1, signBody, decodeBody } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { sigStructure } from '../../protocols/cose.js';

describe('round trip', () => {
  it('signs and verifies a reading frame', () => {
    const seed = new Uint8Array(32).fill(7);
    const pub = publicKeyFromSeed(seed);
    const frame = signBody({ type: 'reading', boot: 1, seq: 2, records: [{ n: 'temp', u: 'Cel', v: 21.5 }] }, 'dev-1', (m) => signEd25519(seed, m));
    const d = decodeSign1(frame);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(verifyEd25519(pub, sigStructure(d.value.protectedBytes, d.value.payload), d.value.signature)).toBe(true);
    expect(decodeBody(d.value.payload)).toMatchObject({ ok: true, value: { type: 'reading', boot: 1, seq: 2 } });
  });
});
