/**
 * The free-space guard's decision (gateway/store/free-space.ts): refuse below the floor, one
 * statfs per interval (never per write), 0 disables, a failing statfs lets writes through
 * (lmdb's own failure path still holds), and recovery is seen on the next reading.
 */
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { FreeSpaceGuard } from '../../gateway/store/free-space.js';

describe('FreeSpaceGuard', () => {
  it('refuses below the floor and resumes once space returns, reading statfs at most once per interval', () => {
    let t = 0;
    let free = 10_000;
    let reads = 0;
    const g = new FreeSpaceGuard('/x', {
      minFreeBytes: 5_000,
      intervalMs: 250,
      now: () => t,
      freeBytes: () => (reads++, free),
    });
    expect(g.writable()).toBe(true);
    free = 100;
    for (let i = 0; i < 1000; i++) expect(g.writable()).toBe(true); // cached reading, same interval
    expect(reads).toBe(1);
    t = 250;
    expect(g.writable()).toBe(false);
    expect(g.lastFree).toBe(100);
    expect(g.refusals).toBe(1);
    free = 5_000; // exactly the floor is enough
    t = 499;
    expect(g.writable()).toBe(false);
    t = 500;
    expect(g.writable()).toBe(true);
    expect(reads).toBe(3);
  });

  it('0 disables it (no statfs at all)', () => {
    let reads = 0;
    const g = new FreeSpaceGuard('/x', { minFreeBytes: 0, freeBytes: () => (reads++, 0) });
    expect(g.writable()).toBe(true);
    expect(reads).toBe(0);
  });

  it('a failing statfs does not block writes', () => {
    const g = new FreeSpaceGuard('/x', {
      minFreeBytes: 1,
      freeBytes: () => {
        throw new Error('EIO');
      },
    });
    expect(g.writable()).toBe(true);
  });

  it('reads the real filesystem by default', () => {
    const g = new FreeSpaceGuard(tmpdir(), { minFreeBytes: 1 });
    expect(g.writable()).toBe(true);
    expect(g.lastFree).toBeGreaterThan(0);
  });
});
