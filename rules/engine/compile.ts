/** A validated rule → one rxjs pipeline from its frames to decision drafts. */
import { groupBy, merge, mergeMap, type Observable, type OperatorFunction, type SchedulerLike, share } from 'rxjs';
import { compileCondition, type Condition } from '../dsl/cel.js';
import type { ActionSpec, ConditionRule, DecisionDraft, RuleSpec, TriggerSpec } from '../dsl/types.js';
import type { RuleFrame } from '../frame.js';
import { drafts, seen } from './actions.js';
import { cooldown, rateLimit } from './limits.js';
import { machine } from './machine.js';
import type { Fire } from './sample.js';
import { debounce, edges, evaluate, type EvalCounters, forDuration } from './signal.js';
import { type StageOperator, stages } from './stage.js';
import { watchdog } from './watchdog.js';
import { windowed } from './window.js';

/** The part of a trigger fixed by who sent the frame (device, model, site): cacheable per sender. */
export function senderMatcher(t: TriggerSpec): (f: Pick<RuleFrame, 'device' | 'model' | 'site'>) => boolean {
  const devices = t.devices && new Set(t.devices);
  const models = t.models && new Set(t.models);
  const sites = t.sites && new Set(t.sites);
  return (f) =>
    (!devices || devices.has(f.device)) &&
    (!models || (f.model !== undefined && models.has(f.model))) &&
    (!sites || (f.site !== undefined && sites.has(f.site)));
}

/** The per-frame part: at least one record with one of the trigger's SenML names (always true without names). */
export function namesMatcher(t: TriggerSpec): ((f: RuleFrame) => boolean) | undefined {
  const names = t.names && new Set(t.names);
  return (
    names &&
    ((f) => {
      for (const r of f.records) if (names.has(r.name)) return true;
      return false;
    })
  );
}

const cel = (src: string): Condition => {
  const c = compileCondition(src);
  if (typeof c === 'string') throw new TypeError(`CEL "${src}": ${c}`);
  return c;
};

export function compileRule(
  rule: RuleSpec,
  scheduler: SchedulerLike,
  counters: EvalCounters,
): OperatorFunction<RuleFrame, DecisionDraft> {
  if (rule.kind === 'custom') return rule.operator({ scheduler, ruleId: rule.id });
  if (rule.kind === 'machine') return machine(rule, counters, scheduler);
  return compileConditionRule(rule, scheduler, counters);
}

function compileConditionRule(
  rule: ConditionRule,
  scheduler: SchedulerLike,
  counters: EvalCounters,
): OperatorFunction<RuleFrame, DecisionDraft> {
  const when = rule.when !== undefined ? cel(rule.when) : undefined;
  const clear = rule.clear !== undefined ? cel(rule.clear) : undefined;
  const toDrafts = (f: Fire): DecisionDraft[] => {
    const actions: readonly ActionSpec[] = f.edge === 'rise' ? rule.then : rule.onClear;
    const held = rule.forMs !== undefined ? ` for ${rule.forMs} ms` : '';
    const why =
      f.edge === 'rise'
        ? `when "${rule.when}" holds${held}`
        : clear
          ? `clear "${rule.clear}" holds`
          : `when "${rule.when}" no longer holds`;
    const episode = { key: rule.per === 'rule' ? '' : String(f.ctx.device), edge: f.edge };
    return drafts(actions, f.ctx, f.inputs, why + seen(f.ctx), episode);
  };
  const condition = (frames: Observable<RuleFrame>): Observable<DecisionDraft> => {
    // The stages change the element type along the chain (frame → window → verdict → draft), which
    // a homogeneous array cannot express; each stage is typed where it is written.
    // biome-ignore lint/suspicious/noExplicitAny: a heterogeneous operator chain, typed at each stage
    const ops: StageOperator<any, any>[] = [
      windowed(rule.window, rule.aggregates, scheduler),
      evaluate(when!, clear, counters, scheduler),
    ];
    if (rule.forMs !== undefined) ops.push(forDuration(rule.forMs, scheduler));
    if (rule.debounceMs !== undefined) ops.push(debounce(rule.debounceMs, scheduler));
    ops.push(edges(rule.fire, scheduler));
    if (rule.cooldownMs !== undefined) ops.push(cooldown(rule.cooldownMs, scheduler));
    if (rule.rateLimit) ops.push(rateLimit(rule.rateLimit.max, rule.rateLimit.perMs, scheduler));
    // one fused operator for the stages (no rxjs subscriber between them), then the drafts
    const fused = stages<RuleFrame, Fire>(
      scheduler,
      ops.map((op) => op.setup),
    );
    const chain = (s: Observable<RuleFrame>): Observable<DecisionDraft> => s.pipe(fused, mergeMap(toDrafts));
    if (rule.per === 'rule') return chain(frames);
    return frames.pipe(
      groupBy((f) => f.device),
      mergeMap((g) => chain(g)),
    );
  };
  const wd = rule.watchdog;
  const watch = (frames: Observable<RuleFrame>): Observable<DecisionDraft> =>
    frames.pipe(
      watchdog(wd!.silenceMs, wd!.devices, scheduler),
      mergeMap((e) => {
        const ctx = {
          device: e.device,
          model: '',
          site: '',
          now: scheduler.now(),
          v: {},
          agg: {},
          last: {},
          state: '',
          dwell: 0,
          latch: {},
          silent: [e.device],
        };
        const inputs = e.frame ? [{ device: e.frame.device, boot: e.frame.boot, seq: e.frame.seq }] : [];
        const reason =
          e.kind === 'silent'
            ? `watchdog: ${e.device} silent for ${wd!.silenceMs} ms`
            : `watchdog: ${e.device} heard again`;
        return drafts(
          e.kind === 'silent' ? wd!.then : wd!.onResume,
          e.kind === 'silent' ? ctx : { ...ctx, silent: [] },
          inputs,
          reason,
          { key: `watchdog/${e.device}`, edge: e.kind === 'silent' ? 'rise' : 'fall' },
        );
      }),
    );
  return (source) => {
    if (!when) return watch(source);
    if (!wd) return condition(source);
    const frames = source.pipe(share());
    return merge(condition(frames), watch(frames));
  };
}
