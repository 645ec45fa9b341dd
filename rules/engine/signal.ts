/**
 * The condition's level over time: CEL evaluation, hysteresis, for-duration, debounce, and
 * the edges actions fire on. Each is a level in, level out operator on the rule's clock.
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import type { CelContext, Condition } from '../dsl/cel.js';
import { type Fire, inputsOf, type Sample, type Signal, valuesOf } from './sample.js';
import { type StageOperator, stage } from './stage.js';

export interface EvalCounters {
  evalErrors: number;
  lastEvalError?: string;
}

/** A condition rule's context has no latches and no silent devices: shared, frozen (read-only for CEL and templates). */
const NO_LATCHES: CelContext['latch'] = Object.freeze({}) as CelContext['latch'];
const NONE_SILENT: CelContext['silent'] = Object.freeze([]) as unknown as CelContext['silent'];

function contextOf(s: Sample, now: number, last: CelContext['last']): CelContext {
  return {
    device: s.frame.device,
    model: s.frame.model ?? '',
    site: s.frame.site ?? '',
    now,
    v: valuesOf(s.frame),
    agg: s.agg as Record<string, number>,
    last,
    state: '',
    dwell: 0,
    latch: NO_LATCHES,
    silent: NONE_SILENT,
  };
}

/** Hysteresis: on when `set` holds, off again only when `clear` holds (without clear: on = set). */
function hysteresis(on: boolean, set: boolean, clear: boolean | undefined): boolean {
  if (clear === undefined) return set;
  if (!on && set) return true;
  if (on && clear && !set) return false;
  return on;
}

/**
 * The condition's level on every sample: `when` (and `clear`) evaluated, hysteresis applied in
 * the same step (one stage less on the hot path). An evaluation error counts as false.
 */
export function evaluate(
  when: Condition,
  clear: Condition | undefined,
  counters: EvalCounters,
  scheduler: SchedulerLike,
): StageOperator<Sample, Signal> {
  return stage<Sample, Signal>(scheduler, (io) => {
    const last: CelContext['last'] = {};
    let on = false;
    const test = (c: Condition, ctx: CelContext): boolean => {
      const r = c.eval(ctx);
      if (r instanceof Error) {
        counters.evalErrors++;
        counters.lastEvalError = `${c.source}: ${r.message.split('\n')[0]}`;
        return false;
      }
      return r;
    };
    return {
      next(s) {
        const seen = (last[s.frame.device] ??= {});
        for (const r of s.frame.records) seen[r.name] = r.value;
        const ctx = contextOf(s, io.now(), last);
        on = hysteresis(on, test(when, ctx), clear && test(clear, ctx));
        io.emit({ on, sample: s, ctx });
      },
    };
  });
}

/** For-duration: on only once the input has been on continuously for `ms` (checked by a timer). */
export function forDuration(ms: number, scheduler: SchedulerLike): StageOperator<Signal, Signal> {
  return stage<Signal, Signal>(scheduler, (io) => {
    let since: number | undefined;
    let held = false;
    let latest: Signal | undefined;
    let timer: Subscription | undefined;
    return {
      next(s) {
        latest = s;
        if (!s.on) {
          since = undefined;
          held = false;
          timer?.unsubscribe();
          timer = undefined;
          io.emit(s);
          return;
        }
        if (held) return io.emit(s);
        if (since === undefined) {
          since = io.now();
          timer = io.timer(ms, () => {
            timer = undefined;
            held = true;
            io.emit({ ...latest!, on: true });
          });
        }
        io.emit({ ...s, on: false });
      },
    };
  });
}

/** Debounce: a change of level passes only once it has stayed changed for `ms`. */
export function debounce(ms: number, scheduler: SchedulerLike): StageOperator<Signal, Signal> {
  return stage<Signal, Signal>(scheduler, (io) => {
    let out = false;
    let latest: Signal | undefined;
    let timer: Subscription | undefined;
    return {
      next(s) {
        latest = s;
        if (s.on === out) {
          timer?.unsubscribe();
          timer = undefined;
          io.emit(s);
          return;
        }
        timer ??= io.timer(ms, () => {
          timer = undefined;
          out = latest!.on;
          io.emit(latest!);
        });
      },
    };
  });
}

/** Level → fires: `rising` acts on each change, `every` on every sample that is on (and on the fall). */
export function edges(fire: 'rising' | 'every', scheduler: SchedulerLike): StageOperator<Signal, Fire> {
  return stage<Signal, Fire>(scheduler, (io) => {
    let on = false;
    return {
      next(s) {
        const was = on;
        on = s.on;
        if (on && (!was || fire === 'every')) io.emit({ edge: 'rise', ctx: s.ctx, inputs: inputsOf(s.sample) });
        else if (!on && was) io.emit({ edge: 'fall', ctx: s.ctx, inputs: inputsOf(s.sample) });
      },
    };
  });
}
