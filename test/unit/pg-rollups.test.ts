/**
 * The PostgreSQL sink's pre-aggregated rollups (gateway/export/sinks/pg-rollups.ts): records
 * in any order (late, out of order), cut into batches anyhow, summed per batch and the batch
 * sums merged as the upsert merges them, equal the rollups computed record by record; one
 * row per bucket, sorted by key.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BucketSum,
  bucketOf,
  bucketSums,
  mergeSums,
  type RollupInput,
} from '../../gateway/export/sinks/pg-rollups.js';

const T0 = Date.UTC(2026, 11, 1);
const key = (b: BucketSum): string => `${b[0]}\u0000${b[1]}\u0000${b[2]}\u0000${b[3]}`;

const record = fc.record({
  device: fc.constantFrom('a', 'b', 'a:b'),
  name: fc.constantFrom('t', 'h', 'x\u0000'),
  time: fc.integer({ min: T0 - 3 * 3_600_000, max: T0 + 5 * 3_600_000 }),
  value: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ min: -1e6, max: 1e6, noNaN: true })),
});

/** Record by record: each bucket's count, min, max and sum as a model has them. */
function model(records: readonly RollupInput[], steps: readonly number[]): Map<string, BucketSum> {
  const m = new Map<string, BucketSum>();
  for (const r of records)
    for (const step of steps) {
      const b: BucketSum = [r.device, r.name, step, bucketOf(r.time, step), 1, r.value, r.value, r.value];
      const k = key(b);
      const had = m.get(k);
      m.set(k, had ? mergeSums(had, b) : b);
    }
  return m;
}

describe('PostgreSQL rollups summed per batch', () => {
  it('[property] batch sums merged equal the rollups record by record, in any order and any cut', () => {
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 80 }),
        fc.array(fc.nat({ max: 80 }), { maxLength: 6 }),
        fc.constantFrom([3600], [60, 3600]),
        (records, cuts, steps) => {
          const at = [...new Set([0, ...cuts.map((c) => Math.min(c, records.length)), records.length])].sort(
            (a, b) => a - b,
          );
          const merged = new Map<string, BucketSum>();
          // Batches in reverse order: the later records arrive first, the earlier ones late.
          for (let i = at.length - 2; i >= 0; i--) {
            const sums = bucketSums(records.slice(at[i], at[i + 1]), steps);
            const keys = sums.map(key);
            expect(new Set(keys).size).toBe(keys.length); // one row per bucket
            expect([...keys].sort()).toEqual(keys); // in key order (row locks in one order)
            for (const s of sums) {
              const had = merged.get(key(s));
              merged.set(key(s), had ? mergeSums(had, s) : s);
            }
          }
          const want = model(records, steps);
          expect([...merged.keys()].sort()).toEqual([...want.keys()].sort());
          for (const [k, w] of want) {
            const g = merged.get(k)!;
            expect(g.slice(0, 7)).toEqual(w.slice(0, 7));
            expect(Math.abs(g[7] - w[7])).toBeLessThanOrEqual(
              1e-9 * Math.max(1, ...records.map((r) => Math.abs(r.value))) * records.length,
            );
          }
        },
      ),
    );
  });

  it('buckets by record time: a bucket starts at a whole step, negative times included', () => {
    expect(bucketOf(T0 + 3_599_999, 3600)).toBe(T0);
    expect(bucketOf(T0 + 3_600_000, 3600)).toBe(T0 + 3_600_000);
    expect(bucketOf(-1, 60)).toBe(-60_000);
    expect(bucketSums([])).toEqual([]);
  });
});
