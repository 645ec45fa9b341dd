/**
 * The last few frames a device had acked (material for replay attacks, faults.ts), kept as
 * copies of their bytes and counters in one buffer per device rather than as the frames
 * themselves. A frame object held for 16 periods outlives every young-generation collection:
 * each was copied, promoted and later collected by a full one, most of the garbage collector's
 * work in a simulated fleet (bench/README.md, "firmware-sim"). Kept here, a frame dies young.
 * A frame over `SLOT_BYTES` (not a usual reading) is kept as a copy of its own.
 */
import type { DeviceFrame } from './device.js';

const SLOT_BYTES = 256;

export class AckedRing {
  private bytes: Uint8Array | undefined;
  /** Per slot: boot, seq, time, attempts, length. */
  private meta: Float64Array | undefined;
  private big: (Uint8Array | undefined)[] = [];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.count;
  }

  push(f: DeviceFrame): void {
    // Allocated on the first ack: a device that is never acked keeps nothing.
    this.bytes ??= new Uint8Array(this.capacity * SLOT_BYTES);
    this.meta ??= new Float64Array(this.capacity * 5);
    const i = this.next;
    const m = i * 5;
    this.meta[m] = f.boot;
    this.meta[m + 1] = f.seq;
    this.meta[m + 2] = f.time;
    this.meta[m + 3] = f.attempts;
    this.meta[m + 4] = f.bytes.length;
    if (f.bytes.length <= SLOT_BYTES) {
      this.bytes.set(f.bytes, i * SLOT_BYTES);
      if (this.big.length > 0) this.big[i] = undefined;
    } else this.big[i] = f.bytes.slice();
    this.next = (i + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Oldest first; each a fresh copy. */
  frames(): DeviceFrame[] {
    const out: DeviceFrame[] = [];
    const { bytes, meta } = this;
    if (bytes === undefined || meta === undefined) return out;
    for (let k = 0; k < this.count; k++) {
      const i = (this.next - this.count + k + this.capacity) % this.capacity;
      const m = i * 5;
      const len = meta[m + 4]!;
      out.push({
        boot: meta[m]!,
        seq: meta[m + 1]!,
        time: meta[m + 2]!,
        attempts: meta[m + 3]!,
        bytes: len <= SLOT_BYTES ? bytes.slice(i * SLOT_BYTES, i * SLOT_BYTES + len) : this.big[i]!.slice(),
      });
    }
    return out;
  }
}
