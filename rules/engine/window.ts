/**
 * Windows and aggregates: tumbling (fixed, epoch-aligned, emitted when the window closes),
 * sliding (the last `size` ms, emitted on every frame) and count (the last N frames).
 */
import type { SchedulerLike } from 'rxjs';
import type { AggregateSpec, WindowSpec } from '../dsl/types.js';
import type { RuleFrame } from '../frame.js';
import { RollingWindow } from './rolling.js';
import { MAX_INPUTS, type Sample } from './sample.js';
import { type StageOperator, stage } from './stage.js';

export function windowed(
  spec: WindowSpec | undefined,
  aggs: readonly AggregateSpec[],
  scheduler: SchedulerLike,
): StageOperator<RuleFrame, Sample> {
  return stage<RuleFrame, Sample>(scheduler, (io) => {
    const buf: RuleFrame[] = [];
    const sample = (frames: RuleFrame[]): Sample => ({
      frame: frames[frames.length - 1]!,
      frames,
      agg: aggregate(frames, aggs),
    });
    if (!spec) return { next: (f) => io.emit({ frame: f, frames: [f], agg: {} }) };
    if (spec.kind === 'count') {
      const w = new RollingWindow(aggs, MAX_INPUTS);
      return {
        next(f) {
          w.add(f);
          if (w.size > spec.count) w.evict(() => w.size > spec.count);
          if (w.size === spec.count) io.emit({ frame: f, frames: w.newest(), agg: w.values() });
        },
      };
    }
    const size = spec.sizeMs;
    if (spec.kind === 'sliding') {
      const w = new RollingWindow(aggs, MAX_INPUTS);
      return {
        next(f) {
          w.add(f);
          const edge = io.now() - size;
          w.evict((time) => time <= edge);
          io.emit({ frame: f, frames: w.newest(), agg: w.values() });
        },
      };
    }
    // tumbling: frames that arrive in [k·size, (k+1)·size) of the rule's clock, emitted at the boundary.
    let open = false;
    const close = (): void => {
      open = false;
      if (buf.length > 0) io.emit(sample(buf.splice(0)));
    };
    return {
      next(f) {
        buf.push(f);
        if (!open) {
          open = true;
          const now = io.now();
          io.timer(size - (now % size), close);
        }
      },
    };
  });
}

export function aggregate(frames: readonly RuleFrame[], aggs: readonly AggregateSpec[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of aggs) {
    let n = 0;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    let first: { v: number; t: number } | undefined;
    let last: { v: number; t: number } | undefined;
    for (const f of frames) {
      for (const r of f.records) {
        if (r.name !== a.of || typeof r.value !== 'number') continue;
        n++;
        sum += r.value;
        if (r.value < min) min = r.value;
        if (r.value > max) max = r.value;
        first ??= { v: r.value, t: r.time };
        last = { v: r.value, t: r.time };
      }
    }
    if (a.fn === 'count') out[a.name] = n;
    if (n === 0) continue; // no value: `agg.x` is missing, and a condition reading it is false
    if (a.fn === 'avg') out[a.name] = sum / n;
    else if (a.fn === 'sum') out[a.name] = sum;
    else if (a.fn === 'min') out[a.name] = min;
    else if (a.fn === 'max') out[a.name] = max;
    else if (a.fn === 'last') out[a.name] = last!.v;
    // rate of change per second between the first and last reading in the window
    else if (a.fn === 'rate')
      out[a.name] = last!.t > first!.t ? ((last!.v - first!.v) * 1000) / (last!.t - first!.t) : 0;
  }
  return out;
}
