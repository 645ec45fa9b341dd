/**
 * Link compression (protocols/link-deflate.ts): a sequence of messages round-trips through
 * one deflater and one inflater whatever their sizes (the windows stay in step), later
 * messages compress against earlier ones, a bomb is refused at the cap without throwing,
 * random bytes never throw, and the capability sentinel in the auth nonce.
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
