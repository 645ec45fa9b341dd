/**
 * firmware-sim/transports/puback-tap.ts: any run of MQTT 3.1.1 packets (PUBACKs ours and not
 * ours, other packets of any type and length, the remaining length in 1 to 4 bytes), cut into
 * reads anywhere, comes out as the ids of our PUBACKs in order and every other byte passed on
 * in order; after a malformed length everything is passed on untouched. The same when each read
 * is the first bytes of a longer, reused buffer (node's `onread`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PubackTap } from '../../firmware-sim/transports/puback-tap.js';

/** The remaining length as MQTT writes it: 7 bits a byte, low first. */
function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n % 128;
    n = Math.floor(n / 128);
    out.push(n > 0 ? b | 0x80 : b);
  } while (n > 0);
  return out;
}

type Packet = { kind: 'puback'; id: number } | { kind: 'other'; type: number; body: Uint8Array };
const packet: fc.Arbitrary<Packet> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((id) => ({ kind: 'puback' as const, id })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        kind: fc.constant('other' as const),
        type: fc.integer({ min: 0, max: 255 }),
        body: fc.oneof(
          { weight: 8, arbitrary: fc.uint8Array({ maxLength: 300 }) },
          // Lengths of 2 and 3 bytes; 0x40 with another length than 2 is not a PUBACK.
          { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 20_000 }).map((n) => new Uint8Array(n).fill(0x40)) },
          { weight: 2, arbitrary: fc.constant(new Uint8Array([0, 7])) },
        ),
      })
      .filter((p) => !(p.type === 0x40 && p.body.length === 2)), // that is a PUBACK
  },
);
const bytesOf = (p: Packet): number[] =>
  p.kind === 'puback' ? [0x40, 0x02, p.id >> 8, p.id & 0xff] : [p.type, ...remainingLength(p.body.length), ...p.body];
/** Ours: the odd ids (the rest are mqtt.js's own publishes). */
const ours = (id: number): boolean => id % 2 === 1;

/** Cuts `all` at the given points (any, sorted, duplicates allowed: empty reads too). */
function reads(all: Uint8Array, cuts: number[]): Buffer[] {
  const at = [...cuts.map((c) => c % (all.length + 1)), all.length].sort((a, b) => a - b);
  let from = 0;
  return at.map((to) => {
    const r = Buffer.from(all.subarray(from, to));
    from = to;
    return r;
  });
}

/**
 * Feeds the reads to a tap. `reused`: as over node's `onread`, each read is copied into one
 * longer buffer (the rest of it PUBACK-looking junk) and fed with its length.
 */
function run(chunks: Buffer[], reused = false): { claimed: number[]; passed: Buffer } {
  const claimed: number[] = [];
  const passed: Buffer[] = [];
  const tap = new PubackTap(
    (id) => ours(id) && claimed.push(id) > 0,
    (b) => passed.push(Buffer.from(b)),
  );
  const shared = Buffer.alloc(Math.max(0, ...chunks.map((c) => c.length)) + 8);
  for (const c of chunks) {
    if (!reused) tap.feed(c);
    else {
      shared.fill(0x40);
      c.copy(shared);
      tap.feed(shared, c.length);
    }
  }
  return { claimed, passed: Buffer.concat(passed) };
}

describe('PubackTap', () => {
  it('takes our PUBACKs, passes every other byte on in order, however the stream is cut', () => {
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 30 }), (packets, cuts) => {
        const all = Uint8Array.from(packets.flatMap(bytesOf));
        for (const reused of [false, true]) {
          const { claimed, passed } = run(reads(all, cuts), reused);
          expect(claimed).toEqual(packets.flatMap((p) => (p.kind === 'puback' && ours(p.id) ? [p.id] : [])));
          const rest = packets.filter((p) => !(p.kind === 'puback' && ours(p.id)));
          expect([...passed]).toEqual(rest.flatMap(bytesOf));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('after a length of five bytes (not MQTT) it passes everything on and takes nothing', () => {
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 10 }), (after, cuts) => {
        const bad = [0x30, 0x80, 0x80, 0x80, 0x80, 0x01];
        const all = Uint8Array.from([0x40, 0x02, 0x00, 0x01, ...bad, ...after.flatMap(bytesOf)]);
        for (const reused of [false, true]) {
          const { claimed, passed } = run(reads(all, cuts), reused);
          expect(claimed).toEqual([1]);
          expect([...passed]).toEqual([...all.subarray(4)]);
        }
      }),
      { numRuns: 200 },
    );
  });
});
