/**
 * Policies in the gateway process: the policy set from `policy.file` (or the
 * built-in default), the permissions with the grant state of the log, the
 * tagger for ingest, the sync filter, and the inbox of admin-signed ops.
 */
import { parsePublicKey } from '../../protocols/index.js';
import type { GatewayConfig } from '../config.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import { GrantState } from './grants.js';
import { PolicyInbox } from './inbox.js';
import { defaultPolicySet, type KnownGateway, loadPolicyFile } from './load.js';
import { Permissions, type PolicySet } from './permissions.js';
import { SyncPolicy } from './sync-filter.js';
import { Tagger } from './tagging.js';

/** The gateways the config knows: this one (when its key is known) and `sync.peers`, usable by name in the policy file. */
export function configGateways(config: GatewayConfig, selfKey?: Uint8Array): KnownGateway[] {
  const out: KnownGateway[] = [];
  if (selfKey)
    out.push({
      id: config.gateway.id,
      publicKey: selfKey,
      kind: 'gateway',
      ...(config.gateway.site !== undefined && { site: config.gateway.site }),
    });
  for (const p of config.sync.peers) {
    const k = parsePublicKey(p.publicKey);
    if (k.ok) out.push({ id: p.id, publicKey: k.value, kind: p.role, ...(p.site !== undefined && { site: p.site }) });
  }
  return out;
}

/** The policy set the config names (throws PolicyLoadError naming file, line and problem). */
export function loadPolicySet(config: GatewayConfig, selfKey?: Uint8Array): PolicySet {
  const gateways = configGateways(config, selfKey);
  return config.policy.file === undefined ? defaultPolicySet(gateways) : loadPolicyFile(config.policy.file, gateways);
}

export class PolicyRuntime {
  readonly permissions: Permissions;
  readonly grants: GrantState;
  readonly tagger: Tagger;
  readonly sync: SyncPolicy;
  readonly inbox: PolicyInbox;

  constructor(
    readonly set: PolicySet,
    config: GatewayConfig,
    log: BlockLog,
    dataDir: string,
    logger: Logger,
  ) {
    this.permissions = new Permissions(set, config.gateway.site ?? '');
    this.grants = GrantState.fromLog(log, set.adminKeys, (c) => {
      logger.info(
        { principal: c.ref, relation: c.relation, policy: c.policy, status: c.status ?? 'none' },
        `permission ${c.relation} on ${c.policy} for ${c.ref}: ${c.status ?? 'none'}`,
      );
      this.permissions.notify(c);
    });
    this.permissions.attachGrants(this.grants);
    this.tagger = new Tagger(set);
    this.sync = new SyncPolicy(this.permissions, { key: log.author, site: config.gateway.site }, (r) =>
      logger.warn(
        { peer: r.peerId ?? r.peer.slice(0, 16), stream: r.stream, policy: r.policy, missing: r.missing },
        `sync: not offering ${r.stream} to ${r.peerId ?? `${r.peer.slice(0, 16)}…`}: ${r.reason} (policy ${r.policy}, missing ${r.missing})`,
      ),
    );
    this.inbox = new PolicyInbox(dataDir, set, this.grants, log, logger);
    if (this.grants.ignored.length > 0)
      logger.warn(
        { ignored: this.grants.ignored },
        `${this.grants.ignored.length} policy blocks do not count (not signed by an admin key of ${set.file})`,
      );
  }

  /** Retention of a stream (its policy's `retention`), for the log's pruning. */
  retentionFor = (stream: string): number | undefined => this.set.policies.get(stream)?.retentionMs;

  status(): Record<string, unknown> {
    return {
      file: this.set.file,
      policies: [...this.set.policies.values()].map((p) => ({
        name: p.name,
        version: p.version,
        reach: p.reach,
        confidential: p.confidential,
      })),
      grants: this.grants.snapshot(),
      withheld: this.sync.refusals().map((r) => ({
        peer: r.peerId ?? r.peer.slice(0, 16),
        author: r.author.slice(0, 16),
        stream: r.stream,
        policy: r.policy,
        missing: r.missing,
      })),
    };
  }

  stop(): void {
    this.inbox.stop();
  }
}
