/**
 * What `gateway start` loads from files before it opens the store, and what `gateway config
 * check` checks: one function for both, so the check accepts exactly what the start accepts.
 */
import type { RuleSet } from '../rules/dsl/types.js';
import { loadRuleFiles } from '../rules/start.js';
import type { GatewayConfig } from './config.js';
import type { PolicySet } from './policy/permissions.js';
import { loadPolicySet } from './policy/runtime.js';

export interface StartInputs {
  readonly policySet: PolicySet;
  /** The rules of `rules.files` (none configured: undefined). */
  readonly ruleSet?: RuleSet;
}

/**
 * The policy set (known principals: this gateway, with `selfKey` when known, and every sync
 * peer) and the rule files; throws PolicyLoadError or RuleError naming file and line.
 */
export async function loadStartInputs(config: GatewayConfig, selfKey: Uint8Array | undefined): Promise<StartInputs> {
  const policySet = loadPolicySet(config, selfKey);
  if (config.rules.files.length === 0) return { policySet };
  return { policySet, ruleSet: await loadRuleFiles(config.rules.files) };
}
