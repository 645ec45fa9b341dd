/**
 * `gateway log query --as PRINCIPAL`: an export filtered for one principal, with the
 * same check the API applies to signed requests: the policy file, the
 * grants and revocations in the log, and each frame's policy from its log block.
 */
import type { GatewayConfig } from '../config.js';
import type { BlockLog } from '../log/block-log.js';
import { GrantState } from '../policy/grants.js';
import { type CheckResult, Permissions } from '../policy/permissions.js';
import { loadPolicySet } from '../policy/runtime.js';
import { CliError, existingIdentity } from './args.js';

export interface ExportView {
  mayRead(policy: string): boolean;
  /** The first refusal met (policy, missing permission), if any. */
  firstRefusal(): Extract<CheckResult, { allowed: false }> | undefined;
  close(): void;
}

/** `log` is the data directory's block log (read only): its grant state decides, with the policy file. */
export function exportView(cfg: GatewayConfig, log: BlockLog, as: string): ExportView {
  const identity = existingIdentity(cfg);
  const set = loadPolicySet(cfg, identity.publicKey);
  const perms = new Permissions(set, cfg.gateway.site ?? '');
  perms.attachGrants(GrantState.fromLog(log, set.adminKeys));
  if (!perms.principal(as)) throw new CliError(`--as ${as}: not a principal of ${set.file} nor a valid did:key`);
  const memo = new Map<string, CheckResult>();
  let refusal: Extract<CheckResult, { allowed: false }> | undefined;
  return {
    mayRead: (policy) => {
      let r = memo.get(policy);
      if (!r) memo.set(policy, (r = perms.check(as, 'read', policy)));
      if (!r.allowed) refusal ??= r;
      return r.allowed;
    },
    firstRefusal: () => refusal,
    close: () => perms.changes$.complete(),
  };
}
