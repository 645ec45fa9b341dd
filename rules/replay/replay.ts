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
  /** Frames decoded and pushed (lazy frames of senders no rule listens to are skipped, as are undecodable ones). */
  readonly decoded: number;
  /** Frames whose time was before the clock (out of order): handled at the clock's time. */
  readonly late: number;
  readonly from: number;
  readonly to: number;
  readonly stats: readonly RuleStats[];
}

/**
 * Frames may also be given as thunks with their sender and time ({device, model?, site?, time,
 * decode}): the replay decodes only frames from senders some rule listens to (the rest still
 * move the clock), which makes a dry run over a whole site's history cheap for a few rules.
 */
export interface LazyFrame {
  readonly device: string;
  readonly model?: string | undefined;
  readonly site?: string | undefined;
  readonly time: number;
  decode(): RuleFrame | undefined;
}

const isLazy = (f: RuleFrame | LazyFrame): f is LazyFrame => typeof (f as LazyFrame).decode === 'function';

export function replay(
  ruleSet: RuleSet,
  frames: Iterable<RuleFrame | LazyFrame>,
  opts: ReplayOptions = {},
): ReplayResult {
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
  let skipped = 0;
  for (; !next.done; next = it.next()) {
    const item = next.value;
    if (item.time < scheduler.now()) late++;
    scheduler.advanceTo(item.time);
    last = Math.max(last, item.time);
    n++;
    if (!isLazy(item)) {
      engine.push(item);
      continue;
    }
    const f = engine.wants(item) ? item.decode() : undefined;
    if (f) engine.push(f);
    else skipped++;
  }
  const to = opts.until ?? last;
  scheduler.advanceTo(to);
  engine.stop();
  return { decisions, frames: n, decoded: n - skipped, late, from, to, stats: engine.stats() };
}
