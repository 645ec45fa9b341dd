/**
 * The packed 1-minute rollup rows (gateway/export/rollup-minutes.ts) in a real lmdb store:
 * random minute sums added in random batches read back as a model map gives them, over any
 * range; minute entries of the layout before (one `rollups` entry per minute) are added in
 * by the reader; pruning drops exactly the minutes that start before the cutoff, including
 * inside the row that holds it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinuteRows } from '../../gateway/export/rollup-minutes.js';
import { type Bucket, RollupStore } from '../../gateway/export/rollups.js';
import { Store } from '../../gateway/store/store.js';
import { testTempDir } from '../helpers/env.js';

const T0 = Date.UTC(2026, 11, 1);
const MIN = 60_000;

const sumOf = (a: Bucket, b: Bucket): Bucket => ({
  count: a.count + b.count,
  min: Math.min(a.min, b.min),
  max: Math.max(a.max, b.max),
  sum: a.sum + b.sum,
});

describe('packed minute rollups', () => {
  it('[property] batches of minute sums read back as the model has them, over any range; pruning cuts at the minute', async () => {
    const store = Store.open(testTempDir('outpost-rollup-minutes-'));
    try {
      const rows = new MinuteRows(store.root.openDB({ name: 'rollup-minutes', encoding: 'binary' }));
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.array(fc.tuple(fc.nat({ max: 600 }), fc.integer({ min: -1000, max: 1000 })), {
              minLength: 1,
              maxLength: 30,
            }),
            { minLength: 1, maxLength: 6 },
          ),
          fc.nat({ max: 600 }),
          fc.nat({ max: 600 }),
          fc.nat({ max: 600 }),
          async (batches, a, b, cut) => {
            const device = `d${run++}`;
            const model = new Map<number, Bucket>();
            for (const batch of batches) {
              const sums = new Map<number, Bucket>();
              for (const [m, v] of batch) {
                const t = T0 + m * MIN;
                const one = { count: 1, min: v, max: v, sum: v };
                sums.set(t, sums.has(t) ? sumOf(sums.get(t)!, one) : one);
                model.set(t, model.has(t) ? sumOf(model.get(t)!, one) : one);
              }
              await store.root.transaction(() => rows.addSync(device, 'temp', sums));
            }
            const [from, to] = [T0 + Math.min(a, b) * MIN, T0 + Math.max(a, b) * MIN + 1];
            const want = [...model].filter(([t]) => t >= from && t < to).sort((x, y) => x[0] - y[0]);
            expect([...rows.buckets(device, 'temp', from, to)]).toEqual(want);
            // Mid-minute: that minute starts before the cutoff, so it goes (as a `rollups` entry's would).
            const cutoff = T0 + cut * MIN + 7_000;
            await store.root.transaction(() => rows.pruneSync(device, 'temp', cutoff));
            const kept = [...model].filter(([t]) => t >= cutoff).sort((x, y) => x[0] - y[0]);
            expect([...rows.buckets(device, 'temp', 0, T0 + 1000 * MIN)]).toEqual(kept);
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await store.close();
    }
  });

  it('adds minute entries of the layout before (one per minute) to the packed rows', async () => {
    const store = Store.open(testTempDir('outpost-rollup-legacy-'));
    try {
      const legacy = store.root.openDB<Bucket, [string, string, number, number]>({ name: 'rollups' });
      await legacy.put(['d', 'temp', 60, T0], { count: 2, min: 1, max: 5, sum: 6 });
      await legacy.put(['d', 'temp', 60, T0 + 2 * MIN], { count: 1, min: 9, max: 9, sum: 9 });
      const r = new RollupStore(store, { 60: 365 * 86_400_000, 3600: 365 * 86_400_000 }, () => T0 + 3600_000);
      const rows = new MinuteRows(store.root.openDB({ name: 'rollup-minutes', encoding: 'binary' }));
      await store.root.transaction(() =>
        rows.addSync('d', 'temp', new Map([[T0, { count: 1, min: -3, max: -3, sum: -3 }]])),
      );
      expect([...r.buckets('d', 'temp', 60, T0, T0 + 3 * MIN)]).toEqual([
        [T0, { count: 3, min: -3, max: 5, sum: 3 }],
        [T0 + 2 * MIN, { count: 1, min: 9, max: 9, sum: 9 }],
      ]);
      expect(r.query('d', 'temp', T0, T0 + 3 * MIN, 3 * MIN, 60)).toEqual([
        { t: T0, count: 4, min: -3, mean: 3, max: 9 },
      ]);
    } finally {
      await store.close();
    }
  });
});
