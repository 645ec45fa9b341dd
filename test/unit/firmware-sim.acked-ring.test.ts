/**
 * firmware-sim/acked-ring.ts against the plain model it replaced (an array of the frames, the
 * oldest shifted out past capacity): any run of acked frames, small and over a slot, gives the
 * same counters and bytes, oldest first, as copies that later writes to the frames do not touch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckedRing } from '../../firmware-sim/acked-ring.js';
import type { DeviceFrame } from '../../firmware-sim/device.js';

const frame: fc.Arbitrary<DeviceFrame> = fc.record({
  boot: fc.integer({ min: 0, max: 0xffffffff }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  time: fc.integer({ min: 0, max: 2 ** 47 }),
  attempts: fc.nat(1000),
  bytes: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 250, maxLength: 600 })),
});

describe('AckedRing', () => {
  it('keeps the last `capacity` acked frames, oldest first, as copies', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(frame, { maxLength: 60 }), (capacity, frames) => {
        const ring = new AckedRing(capacity);
        const model: DeviceFrame[] = [];
        for (const f of frames) {
          ring.push(f);
          model.push({ ...f, bytes: f.bytes.slice() });
          if (model.length > capacity) model.shift();
          f.bytes.fill(0xee); // the frame's own bytes change later (a reused slab): the ring has its copy
          expect(ring.size).toBe(model.length);
        }
        expect(ring.frames()).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });
});
