/**
 * Rule versions in the log: when the live engine starts, each rule version this gateway has
 * not logged yet becomes a signed `rule` block (kind 4, protocols/rule-version.ts) holding its
 * definition, so a decision's `ruleVersion` in the audit traces back to the rule text (anyone
 * can check: the version is the first 12 hex digits of SHA-256 of the definition).
 */
import { type CborValue, decodeSignedBlock, toHex } from '../protocols/index.js';
import { decodeRuleVersionBody, ruleVersionBody, type RuleVersionBody } from '../protocols/rule-version.js';
import type { RuleSet } from '../rules/dsl/types.js';
import { type BlockLog, DEFAULT_POLICY } from './log/block-log.js';

/** Every rule version held in the log, with its author (key hex). */
export function* ruleVersionsInLog(log: BlockLog): Generator<RuleVersionBody & { readonly author: string }> {
  for (const h of log.hashesOfKind('rule')) {
    const sb = decodeSignedBlock(log.getEnvelope(h) ?? new Uint8Array());
    if (!sb.ok) continue;
    const body = decodeRuleVersionBody(sb.value.block.body as CborValue);
    if (body.ok) yield { ...body.value, author: toHex(sb.value.block.author) };
  }
}

/**
 * Logs the versions of `ruleSet` this gateway (the log's author) has not logged before.
 * `inCommit` authors blocks where the gateway authors them (the ingest commit loop).
 */
export function logRuleVersions(
  log: BlockLog,
  ruleSet: RuleSet,
  opts: { now?: number; inCommit?: (author: () => void) => void; policy?: string } = {},
): number {
  const self = log.author;
  const logged = new Set<string>();
  for (const v of ruleVersionsInLog(log)) if (v.author === self) logged.add(`${v.id}\u0000${v.version}`);
  const todo = ruleSet.rules.filter((r) => !logged.has(`${r.id}\u0000${r.version}`));
  if (todo.length === 0) return 0;
  const at = opts.now ?? Date.now();
  const write = (): void => {
    for (const r of todo) {
      const body = ruleVersionBody({
        id: r.id,
        version: r.version,
        kind: r.kind,
        file: r.file,
        definition: r.definition,
        at,
      });
      log.appendBlock({ kind: 'rule', body }, opts.policy ?? DEFAULT_POLICY);
    }
  };
  if (opts.inCommit) opts.inCommit(write);
  else write();
  return todo.length;
}
