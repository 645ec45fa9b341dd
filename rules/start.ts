/**
 * The API the gateway wires in: load rule files, start the engine over a frame stream, send
 * decisions to a sink. Live: `startRules(cfg, frames$, sink)` (asyncScheduler); tests and
 * replays pass their own scheduler.
 */
import { asyncScheduler, type Observable, type SchedulerLike, type Subscription } from 'rxjs';
import type { DecisionSink } from './decision.js';
import { loadRuleFiles } from './dsl/load.js';
import type { RuleSet } from './dsl/types.js';
import { RulesEngine, type RulesLogger, type RuleStats } from './engine/engine.js';
import type { RuleFrame } from './frame.js';

export interface RulesConfig {
  /** Rule files (YAML or TS/JS modules), loaded in order. */
  readonly files: readonly string[];
}

export interface RulesHandle {
  readonly engine: RulesEngine;
  readonly ruleSet: RuleSet;
  stats(): readonly RuleStats[];
  stop(): void;
}

export async function startRules(
  config: RulesConfig | RuleSet,
  frames$: Observable<RuleFrame>,
  sink: DecisionSink,
  scheduler: SchedulerLike = asyncScheduler,
  opts: { log?: RulesLogger; maxRestarts?: number } = {},
): Promise<RulesHandle> {
  const ruleSet = 'files' in config ? await loadRuleFiles(config.files) : config;
  const engine = new RulesEngine(ruleSet, {
    sink,
    scheduler,
    ...(opts.log && { log: opts.log }),
    ...(opts.maxRestarts !== undefined && { maxRestarts: opts.maxRestarts }),
  });
  const sub: Subscription = engine.connect(frames$);
  return {
    engine,
    ruleSet,
    stats: () => engine.stats(),
    stop() {
      sub.unsubscribe();
      engine.stop();
    },
  };
}

export { defineRule } from './dsl/define.js';
export { RuleError } from './dsl/errors.js';
export { loadRuleFiles } from './dsl/load.js';
export { parseRuleFile } from './dsl/parse.js';
export { RulesEngine } from './engine/engine.js';
export { ReplayScheduler } from './engine/scheduler.js';
export { toRuleFrame, type RuleFrame } from './frame.js';
