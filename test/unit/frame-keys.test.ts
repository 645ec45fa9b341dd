/**
 * The frames view's binary keys (gateway/log/frame-keys.ts): each codec round-trips, byte
 * order is the order of its fields (so lmdb ranges are time ranges), range bounds are whole
 * keys that bracket exactly the keys with a prefix, and a key of another length decodes to
 * nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  after,
  COPY_KEY,
  copyKey,
  copyValue,
  deviceKey,
  devicePrefix,
  framePrefix,
  full,
  pointer,
  readCopyKey,
  readCopyValue,
  readDeviceKey,
  readPointer,
  readTimeKey,
  readTimeValue,
  readViewKey,
  TIME_KEY,
  timeKey,
  timePrefix,
  timeValue,
  VIEW_KEY,
  viewKey,
} from '../../gateway/log/frame-keys.js';

const u32 = fc.nat({ max: 0xffffffff });
const dev = fc.nat({ max: 0x7ffffffe }); // numbers stay below 2^31 - 1 (numbers.ts)

const anyTime = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 53 - 1, -(2 ** 53) + 1, 1_796_000_000_000),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
);
const tkey = fc.record({ rxTime: anyTime, dev, boot: u32, seq: u32 });
const cmp = (a: (number | bigint)[], b: (number | bigint)[]): number => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
};
const sign = (n: number): number => Math.sign(n);

describe('frame keys', () => {
  it('round-trip', () => {
    fc.assert(
      fc.property(tkey, fc.nat({ max: 0x7fffffff }), fc.nat({ max: 1023 }), (k, block, index) => {
        expect(readTimeKey(timeKey(k))).toEqual(k);
        expect(readDeviceKey(deviceKey(k))).toEqual(k);
        expect(readViewKey(viewKey(k.dev, k.boot, k.seq))).toEqual({ dev: k.dev, boot: k.boot, seq: k.seq });
        expect(readCopyKey(copyKey(k, block, index))).toEqual({ dev: k.dev, boot: k.boot, seq: k.seq, block, index });
        expect(readCopyValue(copyValue({ block, index, rxTime: k.rxTime }))).toEqual({
          block,
          index,
          rxTime: k.rxTime,
        });
        expect(readTimeValue(timeValue(k.rxTime))).toBe(k.rxTime);
        expect(readPointer(pointer({ block, index }))).toEqual({ block, index });
      }),
    );
  });

  it('byte order is field order', () => {
    fc.assert(
      fc.property(tkey, tkey, (a, b) => {
        expect(sign(Buffer.compare(timeKey(a), timeKey(b)))).toBe(
          cmp([a.rxTime, a.dev, a.boot, a.seq], [b.rxTime, b.dev, b.boot, b.seq]),
        );
        expect(sign(Buffer.compare(deviceKey(a), deviceKey(b)))).toBe(
          cmp([a.dev, a.rxTime, a.boot, a.seq], [b.dev, b.rxTime, b.boot, b.seq]),
        );
        expect(sign(Buffer.compare(viewKey(a.dev, a.boot, a.seq), viewKey(b.dev, b.boot, b.seq)))).toBe(
          cmp([a.dev, a.boot, a.seq], [b.dev, b.boot, b.seq]),
        );
      }),
    );
  });

  it('bounds: full(prefix) ≤ every key with the prefix < after(prefix), and nothing else between', () => {
    fc.assert(
      fc.property(tkey, tkey, (k, other) => {
        const cases: [Buffer, Buffer, Buffer, number][] = [
          [devicePrefix(k.dev), deviceKey(k), deviceKey(other), TIME_KEY],
          [devicePrefix(k.dev, k.rxTime), deviceKey(k), deviceKey(other), TIME_KEY],
          [timePrefix(k.rxTime), timeKey(k), timeKey(other), TIME_KEY],
          [framePrefix(k.dev), viewKey(k.dev, k.boot, k.seq), viewKey(other.dev, other.boot, other.seq), VIEW_KEY],
          [framePrefix(k.dev, k.boot, k.seq), copyKey(k, 7, 3), copyKey(other, 1, 0), COPY_KEY],
        ];
        for (const [p, inside, maybe, len] of cases) {
          const lo = full(p, len);
          const hi = after(p, len);
          expect(lo.length).toBe(len);
          expect(hi.length).toBe(len);
          expect(Buffer.compare(lo, inside)).toBeLessThanOrEqual(0);
          expect(Buffer.compare(inside, hi)).toBe(-1);
          const within = Buffer.compare(lo, maybe) <= 0 && Buffer.compare(maybe, hi) < 0;
          expect(within).toBe(maybe.subarray(0, p.length).equals(p));
        }
      }),
    );
  });

  it('a key of another length decodes to nothing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const b = Buffer.from(bytes);
        if (b.length !== 20) expect(readTimeKey(b) ?? readDeviceKey(b)).toBeUndefined();
        if (b.length !== 12) expect(readViewKey(b)).toBeUndefined();
        if (b.length !== 18) expect(readCopyKey(b)).toBeUndefined();
        if (b.length !== 14) expect(readCopyValue(b)).toBeUndefined();
        if (b.length !== 6) expect(readPointer(b)).toBeUndefined();
        if (b.length !== 8) expect(readTimeValue(b)).toBeUndefined();
      }),
    );
  });
});
