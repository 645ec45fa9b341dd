/**
 * Noise_XX_25519_ChaChaPoly_SHA256 (protocols/noise.ts): the cacophony test vector
 * (handshake messages, handshake hash, transport messages), then properties: any two
 * sides agree, tampering is refused without desynchronising, bounded input.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NoiseXX, x25519PublicOf } from '../../protocols/noise.js';
import { hex, loadJson, toHex } from './vector-helpers.js';

interface Vector {
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}
const [v] = loadJson<{ vectors: Vector[] }>('noise-xx-cacophony.json').vectors;

const ok = <T>(r: { ok: true; value: T } | { ok: false; error: { message: string } }): T => {
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

describe('Noise XX: cacophony vector', () => {
  it('writes the published handshake and transport messages and reaches the published handshake hash', () => {
    const i = new NoiseXX({
      initiator: true,
      staticSecret: hex(v!.init_static),
      ephemeralSecret: hex(v!.init_ephemeral),
      prologue: hex(v!.init_prologue),
    });
    const r = new NoiseXX({
      initiator: false,
      staticSecret: hex(v!.resp_static),
      ephemeralSecret: hex(v!.resp_ephemeral),
      prologue: hex(v!.init_prologue),
    });
    const [m0, m1, m2, ...transport] = v!.messages;
    for (const [m, w, rd] of [
      [m0!, i, r],
      [m1!, r, i],
      [m2!, i, r],
    ] as const) {
      const c = w.writeMessage(hex(m.payload));
      expect(toHex(c)).toBe(m.ciphertext);
      expect(toHex(ok(rd.readMessage(c)))).toBe(m.payload);
    }
    expect(toHex(i.session!.handshakeHash)).toBe(v!.handshake_hash);
    expect(r.session!.remoteStatic).toEqual(x25519PublicOf(hex(v!.init_static)));
    expect(i.session!.remoteStatic).toEqual(x25519PublicOf(hex(v!.resp_static)));
    // after the handshake the responder speaks first (cacophony alternates senders)
    transport.forEach((m, k) => {
      const [from, to] = k % 2 === 0 ? [r.session!, i.session!] : [i.session!, r.session!];
      const c = from.send.encryptWithAd(new Uint8Array(0), hex(m.payload));
      expect(toHex(c)).toBe(m.ciphertext);
      expect(toHex(ok(to.receive.decryptWithAd(new Uint8Array(0), c)))).toBe(m.payload);
    });
  });
});

const pair = (prologue = new Uint8Array(0)) => {
  const is = randomBytes(32);
  const rs = randomBytes(32);
  return {
    is,
    rs,
    i: new NoiseXX({ initiator: true, staticSecret: is, prologue }),
    r: new NoiseXX({ initiator: false, staticSecret: rs, prologue }),
  };
};

describe('Noise XX: properties', () => {
  it('any two sides agree on keys and learn each other’s static key; messages round-trip', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 8 }), (msgs) => {
        const { is, rs, i, r } = pair();
        ok(r.readMessage(i.writeMessage()));
        ok(i.readMessage(r.writeMessage()));
        ok(r.readMessage(i.writeMessage()));
        expect(i.session!.remoteStatic).toEqual(x25519PublicOf(rs));
        expect(r.session!.remoteStatic).toEqual(x25519PublicOf(is));
        for (const m of msgs)
          expect(
            ok(
              r.session!.receive.decryptWithAd(new Uint8Array(0), i.session!.send.encryptWithAd(new Uint8Array(0), m)),
            ),
          ).toEqual(m);
      }),
      { numRuns: 8 },
    );
  });

  it('refuses a tampered handshake or transport message, and a forged one does not desynchronise the session', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 255 }), (pos, flip) => {
        const { i, r } = pair();
        ok(r.readMessage(i.writeMessage()));
        const m1 = r.writeMessage();
        const bad = m1.slice();
        bad[pos % bad.length]! ^= flip;
        expect(new NoiseXX({ initiator: true, staticSecret: randomBytes(32) }).readMessage(bad).ok).toBe(false);
        ok(i.readMessage(m1));
        ok(r.readMessage(i.writeMessage()));
        const c = i.session!.send.encryptWithAd(new Uint8Array(0), new Uint8Array([1, 2, 3]));
        const forged = c.slice();
        forged[pos % forged.length]! ^= flip;
        expect(r.session!.receive.decryptWithAd(new Uint8Array(0), forged).ok).toBe(false);
        expect(ok(r.session!.receive.decryptWithAd(new Uint8Array(0), c))).toEqual(new Uint8Array([1, 2, 3]));
      }),
      { numRuns: 12 },
    );
  });

  it('fails the handshake when the prologues differ', () => {
    const i = new NoiseXX({ initiator: true, staticSecret: randomBytes(32), prologue: new Uint8Array([1]) });
    const r = new NoiseXX({ initiator: false, staticSecret: randomBytes(32), prologue: new Uint8Array([2]) });
    ok(r.readMessage(i.writeMessage()));
    expect(i.readMessage(r.writeMessage())).toMatchObject({ ok: false, error: { code: 'noise/bad-tag' } });
  });

  it('reads any bytes as a typed result', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const r = new NoiseXX({ initiator: false, staticSecret: randomBytes(32) });
        const x = r.readMessage(a);
        if (x.ok) {
          r.writeMessage();
          const y = r.readMessage(b);
          if (!y.ok) expect(y.error.code).toMatch(/^noise\//);
        } else expect(x.error.code).toMatch(/^noise\//);
      }),
      { numRuns: 300 },
    );
  });
});
