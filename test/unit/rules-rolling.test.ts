/** RollingWindow (incremental window aggregates) against a full recomputation: property test. */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATE_FNS, type AggregateSpec } from '../../rules/dsl/types.js';
import { RollingWindow } from '../../rules/engine/rolling.js';
import { aggregate } from '../../rules/engine/window.js';
import type { RuleFrame } from '../../rules/frame.js';

const specs: AggregateSpec[] = AGGREGATE_FNS.flatMap((fn) => [
  { name: `${fn}_a`, fn, of: 'a' },
  { name: `${fn}_b`, fn, of: 'b' },
]);

describe('RollingWindow', () => {
  it('sliding and count windows give the same aggregates as recomputing the window (property)', () => {
    const frame = fc.record({
      dt: fc.integer({ min: 0, max: 3000 }),
      a: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: undefined }),
      b: fc.option(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant(true)), { nil: undefined }),
    });
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 200 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10_000 }),
        (input, count, size) => {
          const byCount = new RollingWindow(specs, 16);
          const bySize = new RollingWindow(specs, 16);
          const all: RuleFrame[] = [];
          let t = 0;
          for (const [i, x] of input.entries()) {
            t += x.dt;
            const records = [
              ...(x.a !== undefined ? [{ name: 'a', value: x.a, time: t }] : []),
              ...(x.b !== undefined ? [{ name: 'b', value: x.b, time: t }] : []),
            ];
            const f: RuleFrame = { device: 'd', boot: 1, seq: i, time: t, records };
            all.push(f);
            byCount.add(f);
            byCount.evict(() => byCount.size > count);
            bySize.add(f);
            bySize.evict((time) => time <= t - size);
            const lastN = all.slice(-count);
            const inTime = all.filter((o) => o.time > t - size);
            for (const [w, frames] of [
              [byCount, lastN],
              [bySize, inTime],
            ] as const) {
              const got = w.values();
              const want = aggregate(frames, specs);
              expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
              for (const k of Object.keys(want)) expect(got[k]).toBeCloseTo(want[k]!, 6);
              expect(w.newest().map((o) => o.seq)).toEqual(frames.slice(-16).map((o) => o.seq));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a window that never evicts, cleared now and then (a tumbling window), gives exactly the recomputed aggregates: NaN, -0, ±Infinity (property)', () => {
    const value = fc.oneof(
      fc.double(),
      fc.integer({ min: -5, max: 5 }),
      fc.constantFrom(0, -0, Number.NaN, Infinity, -Infinity),
      fc.constant(true),
    );
    const frame = fc.record({
      dt: fc.integer({ min: 0, max: 3000 }),
      a: fc.option(value, { nil: undefined }),
      b: fc.option(value, { nil: undefined }),
      clear: fc.integer({ min: 0, max: 9 }).map((k) => k === 0),
    });
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 100 }), (input) => {
        const w = new RollingWindow(specs, 16);
        let all: RuleFrame[] = [];
        let t = 0;
        for (const [i, x] of input.entries()) {
          t += x.dt;
          if (x.clear) {
            // cleared (a tumbling window's boundary): inputs taken before stay as they were
            const before = w.inputs();
            const listed = before.list();
            w.clear();
            all = [];
            expect(before.list()).toEqual(listed);
          }
          const records = [
            ...(x.a !== undefined ? [{ name: 'a', value: x.a, time: t }] : []),
            ...(x.b !== undefined ? [{ name: 'b', value: x.b, time: t }] : []),
          ];
          const f: RuleFrame = { device: i % 3 === 0 ? 'd' : 'e', boot: 1, seq: i, time: t, records };
          all.push(f);
          w.add(f);
          const got = w.values();
          const want = aggregate(all, specs);
          expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
          for (const k of Object.keys(want))
            expect(Object.is(got[k], want[k]), `${k}: ${got[k]} vs ${want[k]}`).toBe(true);
          expect(w.newest()).toEqual(all.slice(-16).map(({ device, boot, seq }) => ({ device, boot, seq })));
        }
      }),
      { numRuns: 300 },
    );
  });
});
