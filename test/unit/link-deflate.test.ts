/**
 * Link compression (protocols/link-deflate.ts): a sequence of messages round-trips through
 * one deflater and one inflater whatever their sizes (the windows stay in step), later
 * messages compress against earlier ones, a bomb is refused at the cap without throwing,
 * random bytes never throw, the capability sentinel in the auth nonce, and the units that pack
 * several messages into one (lengths as unsigned LEB128).
 */
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CAP_DEFLATE,
  capabilitiesOf,
  DEFLATE_WINDOW,
  MessageDeflater,
  MessageInflater,
  markCapabilities,
  packMessages,
  unpackMessages,
} from '../../protocols/index.js';

// Messages with repeats inside and across them, and sizes around the window.
const message = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 3000 }))
    .map(([unit, times]) => Uint8Array.from({ length: unit.length * times }, (_, i) => unit[i % unit.length]!)),
  fc
    .constantFrom(DEFLATE_WINDOW - 2, DEFLATE_WINDOW, DEFLATE_WINDOW + 2, 16_384, 40_000)
    .chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
);

describe('link compression', () => {
  it('a sequence of messages round-trips in order, each at most a fraction of a percent over its size', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 12 }), fc.integer({ min: 1, max: 9 }), (msgs, level) => {
        const d = new MessageDeflater(level);
        const i = new MessageInflater(1 << 20);
        for (const m of msgs) {
          const c = d.deflate(m);
          // Incompressible input: zlib's blocks expand random bytes by at most ~0.25 % (measured:
          // 37 B on 16 KiB, 213 B on 100 kB), plus a few bytes of block headers.
          expect(c.length).toBeLessThanOrEqual(Math.ceil(m.length * 1.003) + 16);
          const r = i.inflate(c);
          expect(r.ok && Buffer.from(r.value).equals(Buffer.from(m))).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a message repeated on the link costs a few bytes: it compresses against the window', () => {
    const d = new MessageDeflater();
    const i = new MessageInflater(1 << 20);
    const block = new Uint8Array(randomBytes(4000)); // random: alone it does not compress
    const first = d.deflate(block);
    const second = d.deflate(block);
    expect(first.length).toBeGreaterThan(4000);
    expect(second.length).toBeLessThan(64);
    for (const c of [first, second]) expect(i.inflate(c).ok).toBe(true);
  });

  it('a message that inflates past the cap is refused (a bomb), then the link is unusable', () => {
    const i = new MessageInflater(1 << 20);
    const bomb = deflateRawSync(Buffer.alloc(64 << 20)); // 64 MiB of zeros in ~64 kB
    expect(bomb.length).toBeLessThan(100_000);
    const r = i.inflate(bomb);
    expect(r.ok || r.error.code).toBe('link/deflate-too-large');
    const d = new MessageDeflater();
    const next = i.inflate(d.deflate(Uint8Array.of(1, 2, 3)));
    expect(next.ok || next.error.code).toBe('link/deflate-broken');
    // Exactly at the cap is fine.
    const at = new MessageInflater(1000);
    expect(at.inflate(new MessageDeflater().deflate(new Uint8Array(1000))).ok).toBe(true);
    expect(new MessageInflater(999).inflate(new MessageDeflater().deflate(new Uint8Array(1000))).ok).toBe(false);
  });

  it('random bytes never throw: a result, ok or link/deflate-*', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 }), (inputs) => {
        const i = new MessageInflater(4096);
        for (const b of inputs) {
          const r = i.inflate(b);
          if (!r.ok) expect(r.error.code).toMatch(/^link\/deflate-(bad|too-large|broken)$/);
          else expect(r.value.length).toBeLessThanOrEqual(4096);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('units: messages packed together come back the same, through the codec too', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }), { maxLength: 6 }),
        (units) => {
          const d = new MessageDeflater();
          const i = new MessageInflater(1 << 20);
          for (const msgs of units) {
            const r = i.inflate(d.deflate(packMessages(msgs)));
            const back = r.ok ? unpackMessages(r.value) : r;
            expect(back.ok && back.value.map((m) => Buffer.from(m).toString('hex'))).toEqual(
              msgs.map((m) => Buffer.from(m).toString('hex')),
            );
          }
        },
      ),
      { numRuns: 150 },
    );
    // Lengths of 127, 128 and 16 384 bytes take 1, 2 and 3 length bytes.
    const sizes = [0, 127, 128, 16_383, 16_384];
    const unit = packMessages(sizes.map((n) => new Uint8Array(n)));
    expect(unit.length).toBe(sizes.reduce((s, n) => s + n, 0) + 1 + 1 + 2 + 2 + 3);
  });

  it('units: a length past the end, an over-long length, an empty unit are refused; random bytes never throw', () => {
    expect(unpackMessages(Uint8Array.of(5, 1, 2))).toMatchObject({ ok: false, error: { code: 'link/bad-unit' } });
    expect(unpackMessages(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x01))).toMatchObject({ ok: false });
    expect(unpackMessages(Uint8Array.of(0x80))).toMatchObject({ ok: false });
    expect(unpackMessages(new Uint8Array(0))).toMatchObject({ ok: false });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const r = unpackMessages(b);
        if (r.ok) expect(r.value.reduce((s, m) => s + m.length, 0)).toBeLessThanOrEqual(b.length);
        else expect(r.error.code).toBe('link/bad-unit');
      }),
    );
  });

  it('the nonce sentinel: marked nonces announce their capabilities, random ones (older gateways) none', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 255 }), (n, caps) => {
        const marked = markCapabilities(n, caps);
        expect(marked).toHaveLength(32);
        expect(Buffer.from(marked.subarray(0, 24)).equals(Buffer.from(n.subarray(0, 24)))).toBe(true);
        expect(capabilitiesOf(marked)).toBe(caps);
        expect(capabilitiesOf(n)).toBe(0); // 2^-56 odds of a false match
      }),
    );
    expect(capabilitiesOf(markCapabilities(new Uint8Array(randomBytes(32)), CAP_DEFLATE)) & CAP_DEFLATE).toBe(1);
    expect(() => markCapabilities(new Uint8Array(4), 1)).toThrow();
  });
});
