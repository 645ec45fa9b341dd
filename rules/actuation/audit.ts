/**
 * The audit read back: actuation blocks (decision and outcome records) turned into the
 * Decision records the rules engine produced, each with the command it became and how that
 * ended. Shared with `gateway rules test --diff` (rules/replay), which compares a dry run's
 * decisions with these.
 */
import type { CborValue } from '../../protocols/index.js';
import { type ActuationRecord, type CommandState, decodeActuationBody } from '../../protocols/actuation.js';
import { toHex } from '../../protocols/index.js';
import type { Decision } from '../decision.js';

export interface AuditedDecision extends Decision {
  /** The gateway (key hex) that decided: the author of the block. */
  readonly author: string;
  readonly command?: {
    readonly id: string;
    readonly fence?: number;
    readonly issued: number;
    readonly expires: number;
  };
  readonly outcome?: {
    readonly state: CommandState;
    readonly at: number;
    readonly attempts: number;
    readonly ackStatus?: number;
    readonly detail?: string;
  };
}

/** One actuation block as the reader needs it: its author and its decoded (or raw) body. */
export interface AuditBlock {
  readonly author: string;
  readonly body: CborValue | readonly ActuationRecord[];
}

/**
 * Decisions in the blocks, in decision-time order (ties: block order), each joined with the
 * outcome of its command when one was recorded. Bodies that do not decode are skipped and
 * counted in `skipped` (a block in the log was verified, but its body may be from a newer version).
 */
export function readDecisions(blocks: Iterable<AuditBlock>): { decisions: AuditedDecision[]; skipped: number } {
  const decisions: { d: AuditedDecision; n: number }[] = [];
  const outcomes = new Map<string, AuditedDecision['outcome']>();
  let skipped = 0;
  let n = 0;
  for (const b of blocks) {
    let records: readonly ActuationRecord[];
    if (Array.isArray(b.body) && b.body.every((r) => typeof r === 'object' && r !== null && 'type' in r))
      records = b.body as unknown as readonly ActuationRecord[];
    else {
      const r = decodeActuationBody(b.body as CborValue);
      if (!r.ok) {
        skipped++;
        continue;
      }
      records = r.value;
    }
    for (const r of records) {
      if (r.type === 'decision') {
        const d: AuditedDecision = {
          author: b.author,
          rule: r.rule,
          ruleVersion: r.ruleVersion,
          at: r.at,
          inputs: r.inputs,
          reason: r.reason,
          action: r.action,
          ...(r.command && {
            command: {
              id: toHex(r.command.id),
              issued: r.command.issued,
              expires: r.command.expires,
              ...(r.command.fence !== undefined && { fence: r.command.fence }),
            },
          }),
        };
        decisions.push({ d, n: n++ });
      } else if (r.type === 'outcome') {
        outcomes.set(toHex(r.commandId), {
          state: r.state,
          at: r.at,
          attempts: r.attempts,
          ...(r.ackStatus !== undefined && { ackStatus: r.ackStatus }),
          ...(r.detail !== undefined && { detail: r.detail }),
        });
      }
    }
  }
  decisions.sort((a, b) => a.d.at - b.d.at || a.n - b.n);
  return {
    decisions: decisions.map(({ d }) => {
      const o = d.command ? outcomes.get(d.command.id) : undefined;
      return o ? { ...d, outcome: o } : d;
    }),
    skipped,
  };
}
