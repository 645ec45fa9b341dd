/**
 * Dry run vs the decisions actually taken (the audit, or a decisions JSONL file). Two
 * decisions agree when rule, action and input frames are equal and their times are within
 * a tolerance (live decisions are made a few ms after the frame's receive time).
 */
import type { Decision } from '../decision.js';

export interface DecisionDiff {
  readonly matched: readonly { readonly taken: Decision; readonly replayed: Decision }[];
  /** Taken live, not made by the dry run. */
  readonly missing: readonly Decision[];
  /** Made by the dry run, not taken live. */
  readonly extra: readonly Decision[];
  /** Matched pairs whose rule version differs (the rule changed since). */
  readonly versionChanged: number;
  readonly same: boolean;
}

const decisionKey = (d: Decision): string =>
  JSON.stringify([d.rule, d.action, d.inputs.map((i) => [i.device, i.boot, i.seq])]);

export function diffDecisions(
  taken: readonly Decision[],
  replayed: readonly Decision[],
  opts: { toleranceMs?: number } = {},
): DecisionDiff {
  const tol = opts.toleranceMs ?? 1000;
  const pool = new Map<string, Decision[]>();
  for (const d of [...taken].sort((a, b) => a.at - b.at)) {
    const k = decisionKey(d);
    const list = pool.get(k);
    if (list) list.push(d);
    else pool.set(k, [d]);
  }
  const matched: { taken: Decision; replayed: Decision }[] = [];
  const extra: Decision[] = [];
  for (const r of replayed) {
    const list = pool.get(decisionKey(r));
    const i = list ? list.findIndex((t) => Math.abs(t.at - r.at) <= tol) : -1;
    if (list && i >= 0) matched.push({ taken: list.splice(i, 1)[0]!, replayed: r });
    else extra.push(r);
  }
  const missing = [...pool.values()].flat().sort((a, b) => a.at - b.at);
  const versionChanged = matched.filter((m) => m.taken.ruleVersion !== m.replayed.ruleVersion).length;
  return { matched, missing, extra, versionChanged, same: missing.length === 0 && extra.length === 0 };
}
