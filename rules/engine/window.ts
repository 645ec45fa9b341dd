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
    if (!spec) return { next: (f) => io.emit({ frame: f, agg: {} }) };
    // Windows keep numbers and the frames' identities, not the frames (rolling.ts).
    if (spec.kind === 'count') {
      const w = new RollingWindow(aggs, MAX_INPUTS);
      return {
        next(f) {
          w.add(f);
          w.evictBeyond(spec.count);
          if (w.size === spec.count) io.emit({ frame: f, window: w.inputs(), agg: w.values() });
        },
      };
    }
    const size = spec.sizeMs;
    if (spec.kind === 'sliding') {
      const w = new RollingWindow(aggs, MAX_INPUTS);
      return {
        next(f) {
          w.add(f);
          w.evictUntil(io.now() - size);
          io.emit({ frame: f, window: w.inputs(), agg: w.values() });
        },
      };
    }
    // tumbling: frames that arrive in [k·size, (k+1)·size) of the rule's clock, emitted at the
    // boundary; aggregated as they come (a RollingWindow that never evicts, cleared at the
    // boundary), only the newest frame kept.
    const w = new RollingWindow(aggs, MAX_INPUTS);
    let newest: RuleFrame | undefined;
    let open = false;
    const close = (): void => {
      open = false;
      if (!newest) return;
      const s: Sample = { frame: newest, window: w.inputs(), agg: w.values() };
      w.clear();
      newest = undefined;
      io.emit(s);
    };
    return {
      next(f) {
        w.add(f);
        newest = f;
        if (!open) {
          open = true;
          const now = io.now();
          io.timer(size - (now % size), close);
        }
      },
    };
  });
}

/**
 * The aggregates recomputed over a list of frames: the reference RollingWindow is
 * property-tested against (test/unit/rules-rolling.test.ts).
 */
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
