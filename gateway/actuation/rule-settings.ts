/**
 * Rule `settings` decisions in the live gateway: each becomes a request in the settings pending
 * folder (gateway/settings/inbox.ts), as a `gateway devices set` does, by `rule:<id>` at the
 * decision's time; the settings part logs it as a signed settings block and delivers it.
 */
import type { SettingsRecord } from '../../protocols/settings.js';
import type { Decision } from '../../rules/decision.js';
import type { Logger } from '../logger.js';

export type RuleSettingsDecision = Decision & { readonly action: { readonly kind: 'settings' } };

/** What became of a decision: queued, the same values this rule last queued (nothing to do), refused (logged), or no settings part. */
export type RuleSettingsOutcome = 'queued' | 'unchanged' | 'refused' | 'dropped';

export class RuleSettingsQueue {
  /** Rule and device → the values that rule last queued for it. A restart forgets: they are queued once more. */
  private readonly last = new Map<string, string>();

  constructor(
    /** queueSettings bound to the data directory; throws on a bad record or a full disk. */
    private readonly queue: ((record: SettingsRecord) => void) | undefined,
    private readonly log: Logger,
  ) {}

  decide(d: RuleSettingsDecision): RuleSettingsOutcome {
    const a = d.action;
    if (!this.queue) {
      this.log.warn({ rule: d.rule, device: a.device }, 'settings action without the settings part: dropped');
      return 'dropped';
    }
    const key = JSON.stringify([d.rule, a.device]);
    const values = JSON.stringify(a.values);
    // Desired settings are last writer wins: the same values again would only add a block.
    if (this.last.get(key) === values) return 'unchanged';
    try {
      this.queue({ device: a.device, values: a.values, at: d.at, by: `rule:${d.rule}` });
    } catch (err) {
      // A template that filled to no device id, or a full disk: this decision only.
      this.log.warn(
        { rule: d.rule, device: a.device, err: err instanceof Error ? err.message : String(err) },
        'settings action not queued',
      );
      return 'refused';
    }
    this.last.set(key, values);
    return 'queued';
  }
}
