/**
 * The blocks a sync session holds back while the streams it asked for are to come
 * (gateway/sync/parked.ts): released by the hash they wait for, drained at the end, and
 * bounded in count and bytes (past the caps a block is not held, so the session refuses it).
 */
import { describe, expect, it } from 'vitest';
import { Parked } from '../../gateway/sync/parked.js';

describe('parked sync blocks', () => {
  it('releases the blocks waiting on a hash, copies what it holds, and drains the rest', () => {
    const p = new Parked();
    const buf = Uint8Array.of(1, 2, 3);
    expect(p.hold('aa', buf)).toBe(true);
    expect(p.hold('aa', Uint8Array.of(4))).toBe(true);
    expect(p.hold('bb', Uint8Array.of(5))).toBe(true);
    buf[0] = 9; // the transport reuses its buffer
    expect(p.size).toBe(3);
    expect(p.release('cc')).toEqual([]);
    expect(p.release('aa')).toEqual([Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
    expect(p.release('aa')).toEqual([]);
    expect(p.drain()).toEqual([Uint8Array.of(5)]);
    expect(p.size).toBe(0);
  });

  it('holds at most 1 024 blocks and 16 MiB; room comes back as they are released', () => {
    const p = new Parked();
    for (let i = 0; i < 1024; i++) expect(p.hold(`h${i % 7}`, Uint8Array.of(i & 0xff))).toBe(true);
    expect(p.hold('x', Uint8Array.of(0))).toBe(false);
    p.release('h0');
    expect(p.hold('x', Uint8Array.of(0))).toBe(true);
    p.drain();
    expect(p.hold('big', new Uint8Array(16 * 1024 * 1024 - 10))).toBe(true);
    expect(p.hold('big', new Uint8Array(11))).toBe(false);
    expect(p.hold('big', new Uint8Array(10))).toBe(true);
    expect(p.size).toBe(2);
  });
});
