/**
 * Per-device anti-replay window over (boot, seq), in the spirit of RFC 4303
 * §3.4.3 but two-level: a higher boot starts a fresh window; inside the current
 * boot, late frames within `size` of the highest seq are accepted once.
 */
import type { WindowRecord } from '../store/store.js';

export type WindowVerdict =
  /** New (boot, seq): store it. */
  | 'fresh'
  /** Already seen inside the window. */
  | 'seen'
  /** Below the window or from an older boot: only a store lookup can tell duplicate from replay. */
  | 'outside';

export class ReplayWindow {
  private constructor(
    private boot: number,
    private max: number,
    /** Bit i set = seq (max - i) seen. */
    private bits: Uint8Array,
    readonly size: number,
  ) {}

  static empty(size: number): ReplayWindow {
    return new ReplayWindow(-1, -1, new Uint8Array(size / 8), size);
  }

  static fromRecord(r: WindowRecord, size: number): ReplayWindow {
    const bits = new Uint8Array(size / 8);
    bits.set(r.bits.subarray(0, bits.length));
    return new ReplayWindow(r.boot, r.max, bits, size);
  }

  toRecord(): WindowRecord {
    return { boot: this.boot, max: this.max, bits: this.bits.slice() };
  }

  check(boot: number, seq: number): WindowVerdict {
    if (boot > this.boot) return 'fresh';
    if (boot < this.boot) return 'outside';
    if (seq > this.max) return 'fresh';
    const off = this.max - seq;
    if (off >= this.size) return 'outside';
    return this.bit(off) ? 'seen' : 'fresh';
  }

  /** Marks (boot, seq) as seen; call only after `check` returned 'fresh'. */
  mark(boot: number, seq: number): void {
    if (boot > this.boot) {
      this.boot = boot;
      this.max = seq;
      this.bits.fill(0);
      this.setBit(0);
      return;
    }
    if (seq > this.max) {
      this.shift(seq - this.max);
      this.max = seq;
      this.setBit(0);
      return;
    }
    this.setBit(this.max - seq);
  }

  private bit(off: number): boolean {
    return (this.bits[off >> 3]! & (1 << (off & 7))) !== 0;
  }

  private setBit(off: number): void {
    this.bits[off >> 3]! |= 1 << (off & 7);
  }

  /** Moves every bit `n` places to higher offsets (older), dropping those past the end. */
  private shift(n: number): void {
    if (n >= this.size) {
      this.bits.fill(0);
      return;
    }
    const bytes = n >> 3;
    const rem = n & 7;
    for (let i = this.bits.length - 1; i >= 0; i--) {
      const hi = i - bytes >= 0 ? this.bits[i - bytes]! : 0;
      const lo = i - bytes - 1 >= 0 ? this.bits[i - bytes - 1]! : 0;
      this.bits[i] = rem === 0 ? hi : ((hi << rem) | (lo >> (8 - rem))) & 0xff;
    }
  }
}
