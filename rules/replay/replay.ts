/**
 * Dry run: stored frames, in time order, through a rule set on a virtual clock. The same
 * compiled rules as live; timers (windows, for, debounce, watchdog, dwell) fire at the
 * virtual instants they would have fired at live.
 */
import type { Decision } from '../decision.js';
import type { RuleSet } from '../dsl/types.js';
import { RulesEngine, type RuleStats } from '../engine/engine.js';
import { ReplayScheduler } from '../engine/scheduler.js';
import type { RuleFrame } from '../frame.js';

export interface ReplayOptions {
  /** Clock start (rules start here: initial machine states decide at this instant); default: the first frame's time. */
  readonly since?: number;
  /** Run timers up to here after the last frame; default: the last frame's time. */
  readonly until?: number;
  /** Called with each decision as it is made (besides collecting them). */
  readonly onDecision?: (d: Decision) => void;
}

export interface ReplayResult {
  readonly decisions: Decision[];
  readonly frames: number;
  /** Frames whose time was before the clock (out of order): handled at the clock's time. */
  readonly late: number;
  readonly from: number;
  readonly to: number;
  readonly stats: readonly RuleStats[];
}

export function replay(ruleSet: RuleSet, frames: Iterable<RuleFrame>, opts: ReplayOptions = {}): ReplayResult {
  const it = frames[Symbol.iterator]();
  let next = it.next();
  const from = opts.since ?? (next.done ? (opts.until ?? 0) : next.value.time);
  const scheduler = new ReplayScheduler(from);
  const decisions: Decision[] = [];
  const engine = new RulesEngine(ruleSet, {
    scheduler,
    sink: {
      decide(d) {
        decisions.push(d);
        opts.onDecision?.(d);
      },
    },
  }).start();
  let n = 0;
  let late = 0;
  let last = from;
  for (; !next.done; next = it.next()) {
    const f = next.value;
    if (f.time < scheduler.now()) late++;
    scheduler.advanceTo(f.time);
    engine.push(f);
    last = Math.max(last, f.time);
    n++;
  }
  const to = opts.until ?? last;
  scheduler.advanceTo(to);
  engine.stop();
  return { decisions, frames: n, late, from, to, stats: engine.stats() };
}
