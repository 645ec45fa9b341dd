/**
 * firmware-sim/phase-ticker.ts: one timer firing many devices, each once a period at its own
 * phase (fake timers: the counts are exact, not timing).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PhaseTicker } from '../../firmware-sim/phase-ticker.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('PhaseTicker', () => {
  it('fires each item once a period, in phase order, from its phase on', async () => {
    const fired: string[] = [];
    const t = new PhaseTicker<string>(100, 10, (x) => fired.push(x));
    t.add('late', 95);
    t.add('first', 0);
    t.add('mid', 42);
    t.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['first']);
    await vi.advanceTimersByTimeAsync(998); // up to 999 ms: ten periods
    expect(fired.filter((x) => x === 'first')).toHaveLength(10);
    expect(fired.filter((x) => x === 'mid')).toHaveLength(10);
    expect(fired.filter((x) => x === 'late')).toHaveLength(10);
    expect(fired.slice(0, 6)).toEqual(['first', 'mid', 'late', 'first', 'mid', 'late']);
    t.stop();
  });

  it('a removed item no longer fires, nor any after stop()', async () => {
    const fired: number[] = [];
    const t = new PhaseTicker<number>(50, 10, (x) => fired.push(x));
    t.add(1, 5);
    t.add(2, 25);
    t.start();
    await vi.advanceTimersByTimeAsync(100);
    t.remove(1);
    const ones = fired.filter((x) => x === 1).length;
    await vi.advanceTimersByTimeAsync(100);
    expect(fired.filter((x) => x === 1)).toHaveLength(ones);
    t.stop();
    const n = fired.length;
    await vi.advanceTimersByTimeAsync(200);
    expect(fired).toHaveLength(n);
  });

  it('an item may remove itself while it fires (a device done with its frames)', async () => {
    const t: PhaseTicker<number> = new PhaseTicker<number>(20, 10, (x) => {
      count++;
      t.remove(x);
    });
    let count = 0;
    t.add(7, 0);
    t.add(8, 0);
    t.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(count).toBe(2);
    t.stop();
  });

  it('behind schedule, every item still fires once a round: the rounds stretch, no slot starves', async () => {
    vi.useRealTimers();
    // Each fire takes 2.5 slots of the ticker's clock: it never catches up.
    let clock = 0;
    const counts = new Array<number>(10).fill(0);
    const t = new PhaseTicker<number>(
      100,
      10,
      (x) => {
        counts[x]!++;
        clock += 25;
      },
      () => clock,
    );
    for (let i = 0; i < 10; i++) t.add(i, i * 10 + 5); // one item in each slot
    t.start();
    while (counts.reduce((a, b) => a + b, 0) < 400) await new Promise((r) => setImmediate(r));
    t.stop();
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(Math.max(...counts) - 1);
  });
});
