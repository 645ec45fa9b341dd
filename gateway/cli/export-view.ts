/**
 * `gateway log query --as PRINCIPAL`: an export filtered for one principal, with the
 * same check the API applies to signed requests: the policy file, the
 * grants and revocations in the log, and each frame's policy from its log block.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { GatewayConfig } from '../config.js';
import { GatewayIdentity } from '../identity.js';
import { BlockLog } from '../log/block-log.js';
import { GrantState } from '../policy/grants.js';
import { type CheckResult, Permissions } from '../policy/permissions.js';
import { loadPolicySet } from '../policy/runtime.js';
import type { Store } from '../store/store.js';
import { CliError } from './args.js';

export interface ExportView {
  policyOf(f: { device: string; boot: number; seq: number }): string;
  mayRead(policy: string): boolean;
  /** The first refusal met (policy, missing permission), if any. */
  firstRefusal(): Extract<CheckResult, { allowed: false }> | undefined;
  close(): void;
}

export function exportView(cfg: GatewayConfig, store: Store, as: string): ExportView {
  const dataDir = resolve(cfg.gateway.dataDir);
  if (!existsSync(join(dataDir, 'identity.key')))
    throw new CliError(`no gateway identity in ${dataDir} (start the gateway once)`);
  const identity = GatewayIdentity.loadOrCreate(cfg.gateway.id, dataDir);
  const set = loadPolicySet(cfg, identity.publicKey);
  const perms = new Permissions(set, cfg.gateway.site ?? '');
  // Read only: the log is opened to find each frame's block and the grant state, never written.
  const log = new BlockLog(store, { publicKey: identity.publicKey, sign: identity.sign });
  perms.attachGrants(GrantState.fromLog(log, set.adminKeys));
  if (!perms.principal(as)) throw new CliError(`--as ${as}: not a principal of ${set.file} nor a valid did:key`);
  const memo = new Map<string, CheckResult>();
  let refusal: Extract<CheckResult, { allowed: false }> | undefined;
  return {
    policyOf: (f) => {
      const v = log.viewEntry(f.device, f.boot, f.seq);
      return (v && log.lookup(v.block)?.stream) ?? 'default';
    },
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
