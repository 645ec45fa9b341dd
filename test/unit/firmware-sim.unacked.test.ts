/**
 * firmware-sim/unacked.ts against the plain model it replaced (one Map keyed by `boot:seq`,
 * insertion order = age): any run of new frames (boot growing, seq growing within a boot,
 * reboots), acks of any (boot, seq) and evictions of the oldest leaves the same frames in the
 * same order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnackedFrames } from '../../firmware-sim/unacked.js';

type Op =
  | { k: 'frame' }
  | { k: 'reboot' }
  | { k: 'ack'; pick: number }
  | { k: 'ackAbsent'; boot: number; seq: number }
  | { k: 'shift' };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ k: 'frame' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reboot' as const }) },
  { weight: 3, arbitrary: fc.nat(50).map((pick) => ({ k: 'ack' as const, pick })) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('ackAbsent' as const), boot: fc.nat(5), seq: fc.nat(60) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'shift' as const }) },
);

describe('UnackedFrames', () => {
  it('behaves as one Map keyed by boot:seq in insertion order', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const u = new UnackedFrames<{ boot: number; seq: number }>();
        const model = new Map<string, { boot: number; seq: number }>();
        let boot = 1;
        let seq = 0;
        for (const o of ops) {
          if (o.k === 'frame') {
            const f = { boot, seq: seq++ };
            u.add(f);
            model.set(`${f.boot}:${f.seq}`, f);
          } else if (o.k === 'reboot') {
            boot++;
            seq = 0;
          } else if (o.k === 'ack' || o.k === 'ackAbsent') {
            const all = [...model.values()];
            const t = o.k === 'ack' ? all[o.pick % Math.max(1, all.length)] : o;
            if (!t) continue;
            const had = model.delete(`${t.boot}:${t.seq}`);
            expect(u.delete(t.boot, t.seq)).toBe(had);
          } else {
            const first = model.keys().next();
            const f = u.shift();
            if (first.done) expect(f).toBeUndefined();
            else {
              expect(f).toBe(model.get(first.value));
              model.delete(first.value);
            }
          }
          expect(u.size).toBe(model.size);
        }
        expect(u.values()).toEqual([...model.values()]);
        for (const f of model.values()) expect(u.get(f.boot, f.seq)).toBe(f);
      }),
      { numRuns: 500 },
    );
  });
});
