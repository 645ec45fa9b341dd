/**
 * Per-device replay memory over (boot, seq): what this gateway has stored, kept exactly within
 * fixed bounds so a frame never stored is accepted once, whatever its boot and however late.
 *
 * RFC 4303 §3.4.3 keeps one sliding bitmap and refuses everything behind it; a device that
 * reboots with unacked frames in its buffer and sends its new boot first then loses them.
 * Here each of the last `boots` boots keeps the stored seqs as sorted, disjoint inclusive
 * ranges (a device sending in order holds one range per boot), at most `ranges` per boot.
 * The bounds, and what is given up when they are passed:
 *
 *   - a boot older than the last `boots` boots seen is forgotten: its frames are `outside`;
 *   - past `ranges` ranges in one boot, the lowest range and the gap below it are forgotten:
 *     seqs below the boot's `floor` are `outside`.
 *
 * `outside` is "cannot tell": the caller asks the log, a frame held there is a duplicate and
 * any other is refused as a replay. `seen` is also confirmed against the log (a mark whose
 * transaction failed must not refuse the resend). `fresh` is exact: never marked.
 */
import type { LegacyWindowRecord, ReplayRecord } from '../store/store.js';

/** How much each device's memory holds (config `ingest.replayBoots`, `ingest.replayRanges`). */
export interface ReplayLimits {
  /** Boots remembered per device (the newest by number). */
  readonly boots: number;
  /** Ranges of stored seqs remembered per boot. */
  readonly ranges: number;
}

export const DEFAULT_REPLAY_LIMITS: ReplayLimits = { boots: 4, ranges: 64 };

export type WindowVerdict =
  /** Never marked: store it. */
  | 'fresh'
  /** Marked as stored (the log confirms). */
  | 'seen'
  /** Past the memory's bounds: only the log can tell a duplicate from a replay. */
  | 'outside';

/** One remembered boot: seqs below `floor` are forgotten; `ranges` is [lo, hi, lo, hi, …], sorted, disjoint, not adjacent. */
interface BootMemory {
  readonly boot: number;
  floor: number;
  readonly ranges: number[];
}

export class ReplayWindow {
  /** Sorted by boot, ascending; at most `limits.boots`. */
  private readonly mem: BootMemory[] = [];
  private bootFloor = 0;

  private constructor(readonly limits: ReplayLimits) {
    if (!(Number.isInteger(limits.boots) && limits.boots >= 1 && Number.isInteger(limits.ranges) && limits.ranges >= 1))
      throw new RangeError('replay limits: boots and ranges must be positive integers');
  }

  static empty(limits: ReplayLimits = DEFAULT_REPLAY_LIMITS): ReplayWindow {
    return new ReplayWindow(limits);
  }

  /** Restores a persisted record (either form), trimmed to `limits` if they shrank since. */
  static fromRecord(r: ReplayRecord | LegacyWindowRecord, limits: ReplayLimits = DEFAULT_REPLAY_LIMITS): ReplayWindow {
    const w = new ReplayWindow(limits);
    if ('bits' in r) {
      // The old window refused older boots and seqs behind it: keep exactly that much knowledge.
      if (r.boot < 0) return w;
      const size = r.bits.length * 8;
      const floor = Math.max(0, r.max - size + 1);
      const m: BootMemory = { boot: r.boot, floor, ranges: [] };
      for (let seq = floor; seq <= r.max; seq++) {
        const off = r.max - seq;
        if (r.bits[off >> 3]! & (1 << (off & 7))) addSeq(m.ranges, seq);
      }
      w.mem.push(m);
      w.bootFloor = r.boot;
    } else {
      w.bootFloor = r.bootFloor;
      for (const b of r.boots) w.mem.push({ boot: b.boot, floor: b.floor, ranges: [...b.ranges] });
      w.mem.sort((a, b) => a.boot - b.boot);
    }
    w.trim();
    for (const m of w.mem) compact(m, limits.ranges);
    return w;
  }

  toRecord(): ReplayRecord {
    return {
      bootFloor: this.bootFloor,
      boots: this.mem.map((m) => ({ boot: m.boot, floor: m.floor, ranges: [...m.ranges] })),
    };
  }

  /** Numbers held (boots × (2 + ranges)): what the bounds limit. */
  get size(): number {
    return this.mem.reduce((n, m) => n + 2 + m.ranges.length, 0);
  }

  check(boot: number, seq: number): WindowVerdict {
    if (boot < this.bootFloor) return 'outside';
    const m = this.find(boot);
    if (!m) {
      const full = this.mem.length >= this.limits.boots;
      return full && boot < this.mem[0]!.boot ? 'outside' : 'fresh';
    }
    if (seq < m.floor) return 'outside';
    return contains(m.ranges, seq) ? 'seen' : 'fresh';
  }

  /** Marks (boot, seq) as stored; call only after `check` returned 'fresh'. */
  mark(boot: number, seq: number): void {
    let m = this.find(boot);
    if (!m) {
      m = { boot, floor: 0, ranges: [] };
      let i = this.mem.length;
      while (i > 0 && this.mem[i - 1]!.boot > boot) i--;
      this.mem.splice(i, 0, m);
      this.trim();
    }
    addSeq(m.ranges, seq);
    compact(m, this.limits.ranges);
  }

  /** Forgets the oldest boots beyond the limit. */
  private trim(): void {
    while (this.mem.length > this.limits.boots) this.bootFloor = this.mem.shift()!.boot + 1;
  }

  private find(boot: number): BootMemory | undefined {
    for (const m of this.mem) if (m.boot === boot) return m;
    return undefined;
  }
}

/** Index of the first range whose hi ≥ seq (ranges.length / 2 if none). */
function firstEndingAtOrAfter(ranges: readonly number[], seq: number): number {
  let lo = 0;
  let hi = ranges.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[2 * mid + 1]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function contains(ranges: readonly number[], seq: number): boolean {
  const i = firstEndingAtOrAfter(ranges, seq);
  return 2 * i < ranges.length && ranges[2 * i]! <= seq;
}

/** Adds one seq, merging with the ranges it touches. */
function addSeq(ranges: number[], seq: number): void {
  const i = firstEndingAtOrAfter(ranges, seq);
  const at = 2 * i;
  if (at < ranges.length && ranges[at]! <= seq) return; // already inside
  const joinsPrev = i > 0 && ranges[at - 1]! === seq - 1;
  const joinsNext = at < ranges.length && ranges[at]! === seq + 1;
  if (joinsPrev && joinsNext) {
    ranges.splice(at - 1, 2); // prev's hi and next's lo go: one range
  } else if (joinsPrev) {
    ranges[at - 1] = seq;
  } else if (joinsNext) {
    ranges[at] = seq;
  } else {
    ranges.splice(at, 0, seq, seq);
  }
}

/** Past the limit, forgets the lowest range and the gap below it (raising the floor). */
function compact(m: BootMemory, limit: number): void {
  while (m.ranges.length > 2 * limit) {
    m.floor = m.ranges[1]! + 1;
    m.ranges.splice(0, 2);
  }
  // Ranges forgotten ones covered no longer exist; nothing below the floor stays.
  while (m.ranges.length > 0 && m.ranges[1]! < m.floor) m.ranges.splice(0, 2);
  if (m.ranges.length > 0 && m.ranges[0]! < m.floor) m.ranges[0] = m.floor;
}
