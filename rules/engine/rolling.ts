/**
 * Aggregates over a FIFO window (sliding and count windows), kept up to date as frames enter
 * and leave instead of recomputed over the whole window: sums and counts incrementally,
 * min/max with monotonic deques, rate from the oldest and newest reading. O(1) amortised
 * per frame, so a 10-minute window of a 10 Hz device costs no more than a 1-second one.
 */
import type { FrameRef } from '../decision.js';
import type { AggregateSpec } from '../dsl/types.js';
import type { RuleFrame } from '../frame.js';

/**
 * Rings of numbers in Float64Arrays, grown by doubling when full and never shrunk: a window in
 * its steady state allocates nothing per frame. (Number arrays compacted by slicing, as before,
 * re-grew their backing stores every thousand frames; those lived long enough to be promoted,
 * most of what a replay promoted.)
 */
class Fifo {
  private items = new Float64Array(16);
  private head = 0;
  private n = 0;
  get size(): number {
    return this.n;
  }
  push(x: number): void {
    if (this.n === this.items.length) {
      this.items = grow(this.items, this.head, this.n);
      this.head = 0;
    }
    const j = this.head + this.n;
    this.items[j < this.items.length ? j : j - this.items.length] = x;
    this.n++;
  }
  first(): number | undefined {
    return this.n > 0 ? this.items[this.head] : undefined;
  }
  clear(): void {
    this.head = 0;
    this.n = 0;
  }
  shift(): number | undefined {
    if (this.n === 0) return undefined;
    const x = this.items[this.head]!;
    this.head = this.head + 1 === this.items.length ? 0 : this.head + 1;
    this.n--;
    return x;
  }
}

/** A ring's `n` items from `head`, in order, in an array twice as long. */
function grow(a: Float64Array<ArrayBuffer>, head: number, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  const tail = Math.min(n, a.length - head);
  b.set(a.subarray(head, head + tail), 0);
  if (tail < n) b.set(a.subarray(0, n - tail), tail);
  return b;
}

/**
 * A double-ended queue of points (frame number, value, time) in three rings, no object per
 * point (a replay adds millions).
 */
class Points {
  private ns = new Float64Array(16);
  private vs = new Float64Array(16);
  private ts = new Float64Array(16);
  private head = 0;
  private n = 0;
  get size(): number {
    return this.n;
  }
  private at(i: number): number {
    const j = this.head + i;
    return j < this.ns.length ? j : j - this.ns.length;
  }
  push(n: number, v: number, t: number): void {
    if (this.n === this.ns.length) {
      this.ns = grow(this.ns, this.head, this.n);
      this.vs = grow(this.vs, this.head, this.n);
      this.ts = grow(this.ts, this.head, this.n);
      this.head = 0;
    }
    const j = this.at(this.n++);
    this.ns[j] = n;
    this.vs[j] = v;
    this.ts[j] = t;
  }
  firstN(): number {
    return this.ns[this.head]!;
  }
  firstV(): number {
    return this.vs[this.head]!;
  }
  firstT(): number {
    return this.ts[this.head]!;
  }
  lastV(): number {
    return this.vs[this.at(this.n - 1)]!;
  }
  lastT(): number {
    return this.ts[this.at(this.n - 1)]!;
  }
  /** Drops the oldest point; returns its value. */
  shift(): number {
    const v = this.vs[this.head]!;
    this.head = this.at(1);
    this.n--;
    return v;
  }
  popLast(): void {
    if (this.n > 0) this.n--;
  }
  clear(): void {
    this.head = 0;
    this.n = 0;
  }
}

class One {
  private readonly points = new Points();
  /**
   * min: non-decreasing values from the oldest (a monotonic deque); max: non-increasing. Equal
   * values stay and NaN never enters, so the front is the first of the window's least values as
   * `aggregate`'s `v < min` scan finds it (0 before -0, NaN ignored).
   */
  private readonly mono = new Points();
  private sum = 0;
  constructor(readonly spec: AggregateSpec) {}

  add(n: number, v: number, t: number): void {
    this.points.push(n, v, t);
    this.sum += v;
    if (Number.isNaN(v)) return; // no min or max
    if (this.spec.fn === 'min') {
      while (this.mono.size > 0 && this.mono.lastV() > v) this.mono.popLast();
      this.mono.push(n, v, t);
    } else if (this.spec.fn === 'max') {
      while (this.mono.size > 0 && this.mono.lastV() < v) this.mono.popLast();
      this.mono.push(n, v, t);
    }
  }

  clear(): void {
    this.points.clear();
    this.mono.clear();
    this.sum = 0;
  }

  /** Drops points of frames numbered below `n` (they left the window). */
  drop(n: number): void {
    while (this.points.size > 0 && this.points.firstN() < n) this.sum -= this.points.shift();
    while (this.mono.size > 0 && this.mono.firstN() < n) this.mono.shift();
    if (this.points.size === 0) this.sum = 0; // no drift from float rounding once empty
  }

  value(): number | undefined {
    const k = this.points.size;
    if (k === 0 && this.spec.fn !== 'count') return undefined;
    switch (this.spec.fn) {
      case 'count':
        return k;
      case 'sum':
        return this.sum;
      case 'avg':
        return this.sum / k;
      case 'min':
        return this.mono.size > 0 ? this.mono.firstV() : Infinity; // only NaN in the window
      case 'max':
        return this.mono.size > 0 ? this.mono.firstV() : -Infinity;
      case 'last':
        return this.points.lastV();
      case 'rate': {
        const p = this.points;
        return p.lastT() > p.firstT() ? ((p.lastV() - p.firstV()) * 1000) / (p.lastT() - p.firstT()) : 0;
      }
    }
  }
}

/**
 * The newest frames of a window (at most MAX_INPUTS) as a decision names them: a range of a
 * RefLog's arrays, which later frames only append to, so it is fixed once taken.
 */
export class Refs {
  constructor(
    private readonly devices: readonly string[],
    private readonly boots: readonly number[],
    private readonly seqs: readonly number[],
    private readonly from: number,
    private readonly to: number,
  ) {}

  /** The frames' identities, oldest first. */
  list(): FrameRef[] {
    const out: FrameRef[] = [];
    for (let i = this.from; i < this.to; i++)
      out.push({ device: this.devices[i]!, boot: this.boots[i]!, seq: this.seqs[i]! });
    return out;
  }
}

/**
 * The identities (device, boot, seq) of a window's newest frames, in append-only arrays: the
 * window keeps no frame, so a replay's frames die young instead of being promoted while
 * windows hold them, and a sample's inputs (`Refs`) cost no copy. Compaction makes new
 * arrays; the old ones stay as they are for the Refs that point into them.
 */
class RefLog {
  private devices: string[] = [];
  private boots: number[] = [];
  private seqs: number[] = [];
  private head = 0;

  add(f: FrameRef): void {
    const n = this.devices.length;
    const prev = n > 0 ? this.devices[n - 1] : undefined;
    // the previous frame's string when equal: a decoded frame may bring its own copy
    this.devices.push(prev === f.device ? prev : f.device);
    this.boots.push(f.boot);
    this.seqs.push(f.seq);
  }

  /** Keeps at most the newest `k`. */
  keep(k: number): void {
    const n = this.devices.length;
    if (n - this.head <= k) return;
    this.head = n - k;
    if (this.head > 1024 && this.head * 2 > n) {
      this.devices = this.devices.slice(this.head);
      this.boots = this.boots.slice(this.head);
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
  }

  refs(): Refs {
    return new Refs(this.devices, this.boots, this.seqs, this.head, this.devices.length);
  }
}

export class RollingWindow {
  /** The window's frames' times, oldest first (the first frame is numbered `next - size`). */
  private readonly times = new Fifo();
  private readonly aggs: One[];
  private next = 0;
  /** The newest frames' identities, at most `keepRecent` of those in the window. */
  private recent = new RefLog();

  constructor(
    specs: readonly AggregateSpec[],
    private readonly keepRecent: number,
  ) {
    this.aggs = specs.map((s) => new One(s));
  }

  get size(): number {
    return this.times.size;
  }

  add(f: RuleFrame): void {
    const n = this.next++;
    this.times.push(f.time);
    for (const a of this.aggs) {
      for (const r of f.records) if (r.name === a.spec.of && typeof r.value === 'number') a.add(n, r.value, r.time);
    }
    this.recent.add(f);
    this.recent.keep(this.keepRecent);
  }

  /** Drops the oldest frames while `leave(the oldest frame's time)` holds. */
  evict(leave: (time: number) => boolean): void {
    let dropped = false;
    while (this.times.size > 0 && leave(this.times.first()!)) {
      this.times.shift();
      dropped = true;
    }
    if (dropped) this.dropped();
  }

  /** Drops the frames received at or before `edge` (a sliding window's per-frame eviction, no closure). */
  evictUntil(edge: number): void {
    let dropped = false;
    while (this.times.size > 0 && this.times.first()! <= edge) {
      this.times.shift();
      dropped = true;
    }
    if (dropped) this.dropped();
  }

  /** Drops the oldest frames beyond the newest `count`. */
  evictBeyond(count: number): void {
    if (this.times.size <= count) return;
    while (this.times.size > count) this.times.shift();
    this.dropped();
  }

  private dropped(): void {
    const firstN = this.next - this.times.size;
    for (const a of this.aggs) a.drop(firstN);
    this.recent.keep(Math.min(this.keepRecent, this.times.size));
  }

  /**
   * Empties the window, keeping its rings' room (a tumbling window, every period). Inputs taken
   * before stay as they were: the identities start a new log.
   */
  clear(): void {
    this.times.clear();
    for (const a of this.aggs) a.clear();
    this.recent = new RefLog();
  }

  /** The newest frames still in the window, at most `keepRecent`, oldest first (fixed once taken). */
  inputs(): Refs {
    return this.recent.refs();
  }

  /** The same as a list. */
  newest(): FrameRef[] {
    return this.recent.refs().list();
  }

  values(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.aggs) {
      const v = a.value();
      if (v !== undefined) out[a.spec.name] = v;
    }
    return out;
  }
}
