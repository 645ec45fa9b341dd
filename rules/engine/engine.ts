/**
 * The rules engine: routes each frame to the rules whose trigger matches, runs every rule as
 * its own rxjs pipeline on one scheduler (live: asyncScheduler; replay: ReplayScheduler), and
 * hands decisions to a sink after the interlock check.
 *
 * Isolation: a rule whose pipeline throws is logged, counted and restarted with fresh state
 * (up to `maxRestarts`, then disabled); the other rules never see it. A sink that throws is
 * counted too; decisions keep flowing.
 */
import { asyncScheduler, Observable, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import type { Decision, DecisionSink } from '../decision.js';
import type { DecisionDraft, RuleSet, RuleSpec } from '../dsl/types.js';
import type { RuleFrame } from '../frame.js';
import { compileRule, namesMatcher, senderMatcher } from './compile.js';
import { InterlockGuard } from './interlock.js';
import type { EvalCounters } from './signal.js';

/** pino-compatible. */
export interface RulesLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EngineOptions {
  readonly sink: DecisionSink;
  readonly scheduler?: SchedulerLike;
  readonly log?: RulesLogger;
  /** Restarts of a failing rule before it is disabled (default 10). */
  readonly maxRestarts?: number;
}

export interface RuleStats extends EvalCounters {
  readonly id: string;
  readonly version: string;
  readonly kind: RuleSpec['kind'];
  frames: number;
  decisions: number;
  /** Interlock refusals of this rule's commands. */
  refused: number;
  /** Times its pipeline threw. */
  errors: number;
  lastError?: string;
  disabled: boolean;
}

interface Running {
  readonly spec: RuleSpec;
  readonly sender: (f: Pick<RuleFrame, 'device' | 'model' | 'site'>) => boolean;
  readonly names: ((f: RuleFrame) => boolean) | undefined;
  readonly input: RuleInput;
  readonly stats: RuleStats;
  sub?: Subscription;
}

/**
 * A rule's frames in: a Subject without what the engine does not use (rxjs's Subject.next wraps
 * each call in a closure for its deprecated synchronous error mode; this is a replay's hot
 * path, once per rule and frame). Subscribers are called in order of subscription; the list
 * is copied on (un)subscribe, so a subscriber added during delivery sees the next frame.
 */
class RuleInput extends Observable<RuleFrame> {
  private subs: Subscriber<RuleFrame>[] = [];
  private done = false;

  constructor() {
    super((sub) => {
      if (this.done) {
        sub.complete();
        return;
      }
      this.subs = [...this.subs, sub];
      return () => {
        this.subs = this.subs.filter((s) => s !== sub);
      };
    });
  }

  next(f: RuleFrame): void {
    const subs = this.subs;
    for (let i = 0; i < subs.length; i++) subs[i]!.next(f);
  }

  complete(): void {
    if (this.done) return;
    this.done = true;
    const subs = this.subs;
    this.subs = [];
    for (const s of subs) s.complete();
  }
}

interface SenderRules {
  readonly model: string;
  readonly site: string;
  readonly rules: Running[];
}

export class RulesEngine {
  readonly scheduler: SchedulerLike;
  private readonly running: Running[];
  private readonly interlock: InterlockGuard;
  private readonly maxRestarts: number;
  private started = false;
  /**
   * Rules whose device/model/site filters a sender passes: the router's cache (bounded), by
   * device, then the sender's model and site (no key string built per frame).
   */
  private readonly bySender = new Map<string, SenderRules[]>();
  private cachedSenders = 0;
  sinkErrors = 0;

  constructor(
    readonly ruleSet: RuleSet,
    private readonly opts: EngineOptions,
  ) {
    this.scheduler = opts.scheduler ?? asyncScheduler;
    this.maxRestarts = opts.maxRestarts ?? 10;
    this.interlock = new InterlockGuard(ruleSet.interlocks);
    this.running = ruleSet.rules.map((spec) => ({
      spec,
      sender: senderMatcher(spec.trigger),
      names: namesMatcher(spec.trigger),
      input: new RuleInput(),
      stats: {
        id: spec.id,
        version: spec.version,
        kind: spec.kind,
        frames: 0,
        decisions: 0,
        refused: 0,
        errors: 0,
        evalErrors: 0,
        disabled: false,
      },
    }));
  }

  /** Subscribes every rule (initial machine states decide now). */
  start(): this {
    if (this.started) return this;
    this.started = true;
    for (const r of this.running) this.subscribe(r);
    return this;
  }

  /** The rules whose device/model/site filters this sender passes (cached). */
  private candidates(sender: Pick<RuleFrame, 'device' | 'model' | 'site'>): Running[] {
    const model = sender.model ?? '';
    const site = sender.site ?? '';
    let known = this.bySender.get(sender.device);
    if (known) for (const e of known) if (e.model === model && e.site === site) return e.rules;
    if (this.cachedSenders >= 100_000) {
      this.bySender.clear();
      this.cachedSenders = 0;
      known = undefined;
    }
    const rules = this.running.filter((r) => r.sender(sender));
    if (known) known.push({ model, site, rules });
    else this.bySender.set(sender.device, [{ model, site, rules }]);
    this.cachedSenders++;
    return rules;
  }

  /** Whether any rule takes frames from this sender: a replay skips decoding the others' frames. */
  wants(sender: Pick<RuleFrame, 'device' | 'model' | 'site'>): boolean {
    return this.candidates(sender).length > 0;
  }

  /** One frame into every matching rule; never throws. */
  push(frame: RuleFrame): void {
    for (const r of this.candidates(frame)) {
      if (r.stats.disabled || (r.names && !r.names(frame))) continue;
      r.stats.frames++;
      r.input.next(frame);
    }
  }

  /** Feeds the engine from a stream (the gateway's durable frames). */
  connect(frames$: Observable<RuleFrame>): Subscription {
    this.start();
    return frames$.subscribe({ next: (f) => this.push(f) });
  }

  stop(): void {
    for (const r of this.running) {
      r.sub?.unsubscribe();
      r.input.complete();
    }
  }

  stats(): readonly RuleStats[] {
    return this.running.map((r) => r.stats);
  }

  private subscribe(r: Running): void {
    try {
      const op = compileRule(r.spec, this.scheduler, r.stats);
      r.sub = r.input.pipe(op).subscribe({
        next: (d) => this.decide(r, d),
        error: (e: unknown) => this.failed(r, e),
      });
    } catch (e) {
      this.failed(r, e);
    }
  }

  private failed(r: Running, e: unknown): void {
    r.stats.errors++;
    r.stats.lastError = e instanceof Error ? e.message : String(e);
    r.sub?.unsubscribe();
    r.sub = undefined;
    const restart = r.stats.errors <= this.maxRestarts;
    this.opts.log?.error(
      { rule: r.spec.id, version: r.spec.version, err: r.stats.lastError, errors: r.stats.errors, restart },
      restart ? 'rule failed; restarted with fresh state' : 'rule failed too often; disabled',
    );
    if (restart) this.subscribe(r);
    else r.stats.disabled = true;
  }

  private decide(r: Running, d: DecisionDraft): void {
    let action = d.action;
    let reason = d.reason;
    if (action.kind === 'command') {
      const refusal = this.interlock.admit(action.command);
      if (refusal !== undefined) {
        r.stats.refused++;
        action = { kind: 'alert', message: refusal };
        reason = `${reason}; refused by interlock`;
        this.opts.log?.warn({ rule: r.spec.id, refusal }, 'interlock refused a command');
      }
    } else if (action.kind === 'settings')
      // Sorted by key as the audit stores them (a TS rule may list them in any order), so a replay compares equal.
      action = { ...action, values: [...action.values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
    const decision: Decision = {
      rule: r.spec.id,
      ruleVersion: r.spec.version,
      at: this.scheduler.now(),
      inputs: d.inputs,
      reason,
      action,
      ...(d.episode && { episode: d.episode }),
    };
    r.stats.decisions++;
    try {
      this.opts.sink.decide(decision);
    } catch (e) {
      this.sinkErrors++;
      this.opts.log?.error(
        { rule: r.spec.id, err: e instanceof Error ? e.message : String(e) },
        'decision sink failed',
      );
    }
  }
}
