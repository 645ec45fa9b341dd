/**
 * State machine rules: named states with minimum dwell times, transitions with CEL guards
 * and/or `after` timers, latched requests (a pedestrian button press is remembered until
 * served), and a watchdog that forces a safe state when a device goes silent.
 *
 * Transitions are tried in file order on every frame, watchdog event and timer (minimum
 * dwell reached, an `after` due); at most one is taken per event.
 */
import { merge, type OperatorFunction, type SchedulerLike, share, type Subscription } from 'rxjs';
import type { FrameRef } from '../decision.js';
import { compileCondition, type CelContext, type Condition } from '../dsl/cel.js';
import type { DecisionDraft, MachineRule } from '../dsl/types.js';
import type { RuleFrame } from '../frame.js';
import { drafts, seen } from './actions.js';
import { MAX_INPUTS, valuesOf } from './sample.js';
import { RollingWindow } from './rolling.js';
import type { EvalCounters } from './signal.js';
import { stage } from './stage.js';
import { type WatchEvent, watchdog } from './watchdog.js';

/** A frame, or the watchdog's word on a device (no wrapper object per frame). */
type MachineEvent = RuleFrame | WatchEvent;
const isFrame = (e: MachineEvent): e is RuleFrame => 'records' in e;

const compiled = (src: string): Condition => {
  const c = compileCondition(src);
  if (typeof c === 'string') throw new TypeError(`CEL "${src}": ${c}`); // the parser validated it already
  return c;
};

export function machine(
  rule: MachineRule,
  counters: EvalCounters,
  scheduler: SchedulerLike,
): OperatorFunction<RuleFrame, DecisionDraft> {
  const guards = rule.transitions.map((t) => (t.when !== undefined ? compiled(t.when) : undefined));
  const latchSet = rule.latches.map((l) => compiled(l.set));
  const wd = rule.watchdog;
  const core = stage<MachineEvent, DecisionDraft>(scheduler, (io) => {
    let state = rule.initial;
    let entered = io.now();
    let timers: Subscription[] = [];
    let lastFrame: RuleFrame | undefined;
    const last: CelContext['last'] = {};
    const latch: Record<string, boolean> = Object.fromEntries(rule.latches.map((l) => [l.name, false]));
    const silent = new Set<string>();
    let silentList: string[] = [];
    const win = rule.window ? new RollingWindow(rule.aggregates, MAX_INPUTS) : undefined;
    let agg: Record<string, number> = {};
    const ctx = (): CelContext => ({
      device: lastFrame?.device ?? '',
      model: lastFrame?.model ?? '',
      site: lastFrame?.site ?? '',
      now: io.now(),
      v: lastFrame ? valuesOf(lastFrame) : {},
      agg,
      last,
      state,
      dwell: io.now() - entered,
      latch, // read-only for CEL and templates, which use it at once
      silent: silentList,
    });
    const test = (c: Condition, x: CelContext): boolean => {
      const r = c.eval(x);
      if (r instanceof Error) {
        counters.evalErrors++;
        counters.lastEvalError = `${c.source}: ${r.message.split('\n')[0]}`;
        return false;
      }
      return r;
    };
    // the frames behind a decision: the window's (newest last, at most MAX_INPUTS), else the last frame
    const inputs = (): FrameRef[] =>
      win && win.size > 0
        ? win.newest()
        : lastFrame
          ? [{ device: lastFrame.device, boot: lastFrame.boot, seq: lastFrame.seq }]
          : [];
    const enter = (to: string, why: string): void => {
      const from = state;
      for (const t of timers) t.unsubscribe();
      timers = [];
      state = to;
      entered = io.now();
      for (const l of rule.latches) if (l.clearOnEnter.includes(to)) latch[l.name] = false;
      const x = ctx();
      const reason = `${from} → ${to}: ${why}`;
      for (const d of drafts(rule.states.get(to)!.onEnter, x, inputs(), reason)) io.emit(d);
      // wake up when the minimum dwell ends and when each timed transition falls due
      const wake = new Set<number>([rule.states.get(to)!.minDwellMs]);
      for (const t of rule.transitions)
        if ((t.from === to || t.from === '*') && t.afterMs !== undefined) wake.add(t.afterMs);
      for (const ms of wake) if (ms > 0) timers.push(io.timer(ms, () => step()));
    };
    const step = (given?: CelContext): void => {
      const dwell = io.now() - entered;
      if (dwell < rule.states.get(state)!.minDwellMs) return;
      const x = given ?? ctx();
      for (let i = 0; i < rule.transitions.length; i++) {
        const t = rule.transitions[i]!;
        if (t.from !== state && !(t.from === '*' && t.to !== state)) continue;
        if (t.afterMs !== undefined && dwell < t.afterMs) continue;
        const g = guards[i];
        if (g && !test(g, x)) continue;
        const why = [t.when !== undefined && `when "${t.when}"`, t.afterMs !== undefined && `after ${t.afterMs} ms`]
          .filter(Boolean)
          .join(', ');
        enter(t.to, why + (t.when !== undefined ? seen(x) : ''));
        return;
      }
    };
    // the initial state's entry actions run when the rule starts
    state = '(start)';
    enter(rule.initial, 'initial state');
    return {
      next(e) {
        if (isFrame(e)) {
          lastFrame = e;
          const seenOf = (last[e.device] ??= {});
          for (const r of e.records) seenOf[r.name] = r.value;
          if (win && rule.window) {
            win.add(e);
            const w = rule.window;
            if (w.kind === 'count') win.evictBeyond(w.count);
            else win.evictUntil(io.now() - (w.kind === 'sliding' ? w.sizeMs : 0));
            agg = win.values();
          }
          const x = ctx();
          for (let i = 0; i < rule.latches.length; i++) {
            const l = rule.latches[i]!;
            if (!latch[l.name] && test(latchSet[i]!, x)) latch[l.name] = true;
          }
          step(x);
          return;
        }
        if (e.kind === 'silent') {
          silent.add(e.device);
          silentList = [...silent].sort();
          // safety first: the watchdog's state does not wait for the minimum dwell
          if (wd && state !== wd.state) return enter(wd.state, `watchdog: ${e.device} silent for ${wd.silenceMs} ms`);
          return;
        }
        silent.delete(e.device);
        silentList = [...silent].sort();
        step();
      },
    };
  });
  return (source) => {
    if (!wd) return source.pipe(core);
    const frames = source.pipe(share());
    return merge<MachineEvent[]>(frames, frames.pipe(watchdog(wd.silenceMs, wd.devices, scheduler))).pipe(core);
  };
}
