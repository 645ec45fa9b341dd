/**
 * The replay memory (gateway/ingest/replay-window.ts) against a model: a plain Set of the
 * stored (boot, seq). Whatever the order, a stored frame is never `fresh` (so never stored
 * twice), a never-stored frame of one of the last `boots` boots is `fresh` while its boot has
 * at most `ranges` ranges, and the memory never holds more than its bounds allow, across
 * restarts (a record written and read back) too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ReplayLimits, ReplayWindow } from '../../gateway/ingest/replay-window.js';

const key = (boot: number, seq: number) => `${boot}/${seq}`;

/** What the pipeline does with a verdict, given the log (the model) as the authority. */
function submit(w: ReplayWindow, stored: Set<string>, boot: number, seq: number): 'stored' | 'duplicate' | 'replay' {
  const v = w.check(boot, seq);
  const held = stored.has(key(boot, seq));
  if (held) {
    expect(v, `stored (${boot}, ${seq}) must not be fresh`).not.toBe('fresh');
    return 'duplicate';
  }
  expect(v, `(${boot}, ${seq}) was never marked`).not.toBe('seen');
  if (v === 'outside') return 'replay';
  w.mark(boot, seq);
  stored.add(key(boot, seq));
  return 'stored';
}

/** The K highest distinct boots stored so far. */
function newestBoots(stored: Set<string>, k: number): number[] {
  const boots = [...new Set([...stored].map((s) => Number(s.split('/')[0])))].sort((a, b) => b - a);
  return boots.slice(0, k);
}

const bound = (l: ReplayLimits) => l.boots * (2 + 2 * l.ranges);

describe('replay memory', () => {
  it("keeps a previous boot's backlog that arrives after the new boot's frames, and refuses each twice", () => {
    const w = ReplayWindow.empty({ boots: 4, ranges: 64 });
    const stored = new Set<string>();
    for (let s = 0; s < 200; s++) expect(submit(w, stored, 2, s)).toBe('stored');
    for (let s = 0; s < 200; s++) expect(submit(w, stored, 1, s)).toBe('stored');
    for (let s = 0; s < 200; s++) {
      expect(w.check(1, s)).toBe('seen');
      expect(w.check(2, s)).toBe('seen');
    }
    // One range per boot: in-order frames cost two numbers.
    expect(w.toRecord().boots.map((b) => b.ranges)).toEqual([
      [0, 199],
      [0, 199],
    ]);
  });

  it('forgets boots beyond the newest K, and the lowest range of a boot past its range limit', () => {
    const w = ReplayWindow.empty({ boots: 2, ranges: 2 });
    w.mark(5, 0);
    w.mark(6, 0);
    w.mark(7, 0); // boot 5 forgotten
    expect(w.check(5, 1)).toBe('outside');
    expect(w.check(4, 0)).toBe('outside');
    expect(w.check(6, 1)).toBe('fresh');
    w.mark(7, 10);
    w.mark(7, 20); // three ranges: [0,0] and the gap below [10,10] are forgotten
    expect(w.check(7, 0)).toBe('outside');
    expect(w.check(7, 5)).toBe('fresh');
    expect(w.check(7, 10)).toBe('seen');
    expect(w.check(7, 15)).toBe('fresh');
  });

  it('reads the single-bitmap record of earlier versions as exactly what it knew', () => {
    // max 100, 16-frame window: seqs 85..100 known; 100 and 98 seen.
    const bits = new Uint8Array(2);
    bits[0] = 0b101;
    const w = ReplayWindow.fromRecord({ boot: 3, max: 100, bits }, { boots: 4, ranges: 64 });
    expect(w.check(3, 100)).toBe('seen');
    expect(w.check(3, 98)).toBe('seen');
    expect(w.check(3, 99)).toBe('fresh');
    expect(w.check(3, 85)).toBe('fresh');
    expect(w.check(3, 84)).toBe('outside');
    expect(w.check(2, 1)).toBe('outside');
    expect(w.check(4, 0)).toBe('fresh');
  });

  it('refuses limits that are not positive integers', () => {
    expect(() => ReplayWindow.empty({ boots: 0, ranges: 4 })).toThrow(RangeError);
    expect(() => ReplayWindow.empty({ boots: 2, ranges: 1.5 })).toThrow(RangeError);
  });

  const frames = (boots: number, seqs: number) =>
    fc.array(fc.tuple(fc.nat(boots - 1), fc.nat(seqs - 1), fc.boolean()), { maxLength: 400 });

  it('property: never stores a frame twice, stays within its bounds, and survives a restart', () => {
    fc.assert(
      fc.property(
        fc.record({ boots: fc.integer({ min: 1, max: 4 }), ranges: fc.integer({ min: 1, max: 6 }) }),
        frames(8, 40),
        (limits, ops) => {
          let w = ReplayWindow.empty(limits);
          const stored = new Set<string>();
          for (const [boot, seq, restart] of ops) {
            submit(w, stored, boot, seq);
            expect(w.size).toBeLessThanOrEqual(bound(limits));
            if (restart) w = ReplayWindow.fromRecord(structuredClone(w.toRecord()), limits);
          }
          // Every stored frame stays refused, whatever the memory forgot.
          for (const k of stored) {
            const [b, s] = k.split('/').map(Number);
            expect(w.check(b!, s!)).not.toBe('fresh');
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: a never-stored frame of one of the newest K boots is accepted, in any order', () => {
    // 60 seqs make at most 30 ranges, under the limit: only the boot bound can refuse.
    const limits = { boots: 3, ranges: 32 };
    fc.assert(
      fc.property(frames(7, 60), (ops) => {
        let w = ReplayWindow.empty(limits);
        const stored = new Set<string>();
        for (const [boot, seq, restart] of ops) {
          const newest = newestBoots(stored, limits.boots);
          const acceptable = newest.length < limits.boots || boot >= newest[newest.length - 1]!;
          const held = stored.has(key(boot, seq));
          const r = submit(w, stored, boot, seq);
          expect(r).toBe(held ? 'duplicate' : acceptable ? 'stored' : 'replay');
          if (restart) w = ReplayWindow.fromRecord(structuredClone(w.toRecord()), limits);
        }
      }),
      { numRuns: 300 },
    );
  });
});
