/** A rules engine on virtual time with a recording sink: push frames at offsets, read decisions. */
import type { Decision } from '../../rules/decision.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';
import type { RuleSet } from '../../rules/dsl/types.js';
import { RulesEngine } from '../../rules/engine/engine.js';
import { ReplayScheduler } from '../../rules/engine/scheduler.js';
import type { RecordValue, RuleFrame } from '../../rules/frame.js';

export const T0 = 1_700_000_000_000; // a multiple of every window size used in tests

export function rulesHarness(rules: string | RuleSet, opts: { maxRestarts?: number } = {}) {
  const scheduler = new ReplayScheduler(T0);
  const decisions: Decision[] = [];
  const set = typeof rules === 'string' ? parseRuleFile('test.yaml', rules) : rules;
  const engine = new RulesEngine(set, { sink: { decide: (d) => decisions.push(d) }, scheduler, ...opts }).start();
  const seqs = new Map<string, number>();
  return {
    scheduler,
    engine,
    decisions,
    /** A frame from `device` at T0 + ms. */
    frame(
      ms: number,
      device: string,
      values: Record<string, RecordValue>,
      extra: Partial<Pick<RuleFrame, 'model' | 'site'>> = {},
    ): RuleFrame {
      scheduler.advanceTo(T0 + ms);
      const seq = seqs.get(device) ?? 0;
      seqs.set(device, seq + 1);
      const f: RuleFrame = {
        device,
        boot: 1,
        seq,
        time: T0 + ms,
        records: Object.entries(values).map(([name, value]) => ({ name, value, time: T0 + ms })),
        ...extra,
      };
      engine.push(f);
      return f;
    },
    advance(ms: number): void {
      scheduler.advanceTo(T0 + ms);
    },
    /** Decisions as `offset kind detail`, e.g. `5000 command conv.speed=0.5`, `7000 alert hot`. */
    log(): string[] {
      return decisions.map((d) => {
        const a = d.action;
        const what =
          a.kind === 'command'
            ? `${a.command.device}.${a.command.actuator}=${String(a.command.value)}`
            : a.kind === 'alert'
              ? a.message
              : a.kind === 'settings'
                ? `${a.device} ${a.values.map(([k, v]) => `${k}=${String(v)}`).join(' ')}`
                : `${a.topic} ${a.payload}`;
        return `${d.at - T0} ${a.kind} ${what}`;
      });
    },
  };
}
