/**
 * `defineRule`: custom logic in TypeScript when YAML is not enough. The operator maps the
 * rule's frames (already filtered by `trigger`) to decision drafts; use the scheduler it is
 * given for every timer, so the rule runs the same live and in a replay.
 */
import type { OperatorFunction } from 'rxjs';
import type { RuleFrame } from '../frame.js';
import { RuleError } from './errors.js';
import { canonicalJson, contentVersion } from './parse.js';
import type { CustomRule, CustomRuleContext, DecisionDraft, TriggerSpec } from './types.js';

export interface DefineRuleOptions {
  readonly id: string;
  /** Defaults to a hash of the id, trigger and the operator's source text. */
  readonly version?: string;
  readonly description?: string;
  readonly trigger?: TriggerSpec;
  readonly operator: (ctx: CustomRuleContext) => OperatorFunction<RuleFrame, DecisionDraft>;
}

export function defineRule(o: DefineRuleOptions): CustomRule {
  if (typeof o.id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.id)) {
    throw new RuleError(
      'rules/shape',
      { file: '(defineRule)', rule: String(o.id), field: 'id' },
      'must be 1..64 of [A-Za-z0-9._-]',
    );
  }
  if (typeof o.operator !== 'function')
    throw new RuleError('rules/shape', { file: '(defineRule)', rule: o.id, field: 'operator' }, 'must be a function');
  const def = { id: o.id, trigger: o.trigger ?? {}, operator: o.operator.toString() };
  const hash = contentVersion(def);
  return {
    definition: canonicalJson(def),
    kind: 'custom',
    id: o.id,
    version: o.version !== undefined ? `${o.version}+${hash}` : hash,
    file: '(defineRule)',
    trigger: o.trigger ?? {},
    operator: o.operator,
    ...(o.description !== undefined && { description: o.description }),
  };
}
