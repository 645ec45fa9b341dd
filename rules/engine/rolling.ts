/**
 * Aggregates over a FIFO window (sliding and count windows), kept up to date as frames enter
 * and leave instead of recomputed over the whole window: sums and counts incrementally,
 * min/max with monotonic deques, rate from the oldest and newest reading. O(1) amortised
 * per frame, so a 10-minute window of a 10 Hz device costs no more than a 1-second one.
 */
import type { AggregateSpec } from '../dsl/types.js';
import type { RuleFrame } from '../frame.js';

/** A queue with O(1) amortised shift (arrays re-index on shift). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(x: T): void {
    this.items.push(x);
  }
  first(): T | undefined {
    return this.items[this.head];
  }
  last(): T | undefined {
    return this.items[this.items.length - 1];
  }
  shift(): T | undefined {
    const x = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
  popLast(): T | undefined {
    return this.head < this.items.length ? this.items.pop() : undefined;
  }
}

interface Point {
  readonly n: number;
  readonly v: number;
  readonly t: number;
}

class One {
  private readonly points = new Fifo<Point>();
  private readonly mins = new Fifo<Point>();
  private readonly maxs = new Fifo<Point>();
  private sum = 0;
  constructor(readonly spec: AggregateSpec) {}

  add(p: Point): void {
    this.points.push(p);
    this.sum += p.v;
    if (this.spec.fn === 'min') {
      while (this.mins.size > 0 && this.mins.last()!.v >= p.v) this.mins.popLast();
      this.mins.push(p);
    } else if (this.spec.fn === 'max') {
      while (this.maxs.size > 0 && this.maxs.last()!.v <= p.v) this.maxs.popLast();
      this.maxs.push(p);
    }
  }

  /** Drops points of frames numbered below `n` (they left the window). */
  drop(n: number): void {
    while (this.points.size > 0 && this.points.first()!.n < n) this.sum -= this.points.shift()!.v;
    while (this.mins.size > 0 && this.mins.first()!.n < n) this.mins.shift();
    while (this.maxs.size > 0 && this.maxs.first()!.n < n) this.maxs.shift();
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
        return this.mins.first()!.v;
      case 'max':
        return this.maxs.first()!.v;
      case 'last':
        return this.points.last()!.v;
      case 'rate': {
        const a = this.points.first()!;
        const b = this.points.last()!;
        return b.t > a.t ? ((b.v - a.v) * 1000) / (b.t - a.t) : 0;
      }
    }
  }
}

export class RollingWindow {
  private readonly frames = new Fifo<{ n: number; frame: RuleFrame }>();
  private readonly aggs: One[];
  private next = 0;
  private recent: RuleFrame[] = [];

  constructor(
    specs: readonly AggregateSpec[],
    private readonly keepRecent: number,
  ) {
    this.aggs = specs.map((s) => new One(s));
  }

  get size(): number {
    return this.frames.size;
  }

  add(f: RuleFrame): void {
    const n = this.next++;
    this.frames.push({ n, frame: f });
    for (const a of this.aggs) {
      for (const r of f.records)
        if (r.name === a.spec.of && typeof r.value === 'number') a.add({ n, v: r.value, t: r.time });
    }
    this.recent.push(f);
    if (this.recent.length > this.keepRecent * 2) this.recent = this.recent.slice(-this.keepRecent);
  }

  /** Drops the oldest frames while `leave(oldest)` holds. */
  evict(leave: (f: RuleFrame) => boolean): void {
    let dropped = false;
    while (this.frames.size > 0 && leave(this.frames.first()!.frame)) {
      this.frames.shift();
      dropped = true;
    }
    if (!dropped) return;
    const firstN = this.frames.size > 0 ? this.frames.first()!.n : this.next;
    for (const a of this.aggs) a.drop(firstN);
    if (this.recent.length > this.frames.size) this.recent = this.recent.slice(-this.frames.size);
  }

  /** The newest frames still in the window, at most `keepRecent`, oldest first. */
  newest(): RuleFrame[] {
    return this.recent.slice(-Math.min(this.keepRecent, this.frames.size));
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
