/**
 * The export's batched copies lookup (gateway/log/frame-tables.ts `copiedSeqs`, `anyCopies`)
 * in a real lmdb table: for any copies entries and any run of seqs of one (device, boot), the
 * seqs it answers are exactly those with an entry in that run, the same as asking `copied` for
 * each seq one by one, and `anyCopies` is whether the table holds any entry at all.
 */
import fc from 'fast-check';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { FrameTables } from '../../gateway/log/frame-tables.js';
import { tempDir } from '../helpers/env.js';

const tmp = tempDir('outpost-frame-copies-');
const root = open({ path: tmp.dir });
const tables = new FrameTables(root);
afterAll(async () => {
  await root.close();
  tmp.cleanup();
});

// Small ranges so entries and queries meet often; the u32 edges so a bound's carry is exercised.
const seqArb = fc.oneof(fc.nat({ max: 40 }), fc.constantFrom(0xfffffffe, 0xffffffff));
const entryArb = fc.record({
  dev: fc.nat({ max: 3 }),
  boot: fc.constantFrom(0, 1, 0xffffffff),
  seq: seqArb,
  block: fc.nat({ max: 5 }),
  index: fc.nat({ max: 1023 }),
});

describe('copiedSeqs', () => {
  it('answers a run of seqs as copied answers each seq, and anyCopies whether any entry is held', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { maxLength: 30 }),
        fc.array(fc.tuple(fc.nat({ max: 3 }), fc.constantFrom(0, 1, 0xffffffff), seqArb, seqArb), { maxLength: 8 }),
        async (entries, queries) => {
          await tables.copies.clearAsync();
          for (const e of entries) await tables.putCopy(e, { block: e.block, index: e.index, rxTime: 1 });
          expect(tables.anyCopies()).toBe(entries.length > 0);
          for (const [dev, boot, a, b] of queries) {
            const [lo, hi] = a <= b ? [a, b] : [b, a];
            const want = new Set(
              entries.filter((e) => e.dev === dev && e.boot === boot && e.seq >= lo && e.seq <= hi).map((e) => e.seq),
            );
            const got = tables.copiedSeqs(dev, boot, lo, hi);
            expect([...got].sort((x, y) => x - y)).toEqual([...want].sort((x, y) => x - y));
            for (const seq of new Set([lo, hi, ...want])) expect(got.has(seq)).toBe(tables.copied({ dev, boot, seq }));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
