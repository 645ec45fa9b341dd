/**
 * Enforcement at sync: which (author, stream) a sibling may be offered. A
 * stream is one policy (blocks name `policy@version`; the stream is the name).
 * A peer gets a stream only if
 *  - the policy's reach lets the data go to it, measured from the block's
 *    author gateway: `gateway` never leaves the author; `site` only to
 *    gateways of the author's site; `fleet` to any gateway (not a cloud peer);
 *    `cloud` to cloud peers too; and
 *  - the peer may `hold` data of the policy (holder, reader or owner, its
 *    condition holding), static or granted in the log.
 * A gateway's own streams always go back to it (restore after a wipe).
 * Grants and revocations (`$acl`) go to every sibling; shared export sinks' cursors
 * (`$export`, gateway/export/takeover.ts) to every sibling gateway. A refusal names the
 * policy and the missing permission (`refusals`, logged once per peer and
 * stream by the caller).
 *
 * Hook for confidential policies: a peer that may hold but not read gets the
 * blocks as they are; sealing them for readers is gateway/policy/seal.ts's part.
 */
import { publicKeyToDidKey, fromHex } from '../../protocols/index.js';
import type { StreamFilter } from '../sync/engine.js';
import { CURSOR_STREAM } from '../../protocols/export-cursor.js';
import { ACL_STREAM } from './grants.js';
import type { CheckResult, Permissions, Principal } from './permissions.js';

export interface SyncRefusal {
  /** The peer's key (hex). */
  readonly peer: string;
  /** Its principal name (config `sync.peers[].id` or the policy file), if known. */
  readonly peerId?: string;
  readonly author: string;
  readonly stream: string;
  readonly policy: string;
  readonly missing: string;
  readonly reason: string;
}

export class SyncPolicy {
  /** Latest refusal per (peer, author, stream), for status. */
  private readonly refused = new Map<string, SyncRefusal>();

  constructor(
    private readonly perms: Permissions,
    /** This gateway's key (hex) and site. */
    private readonly self: { readonly key: string; readonly site?: string | undefined },
    /** Called the first time a (peer, stream) is refused. */
    private readonly onRefuse?: (r: SyncRefusal) => void,
  ) {}

  private principalOf(keyHex: string): Principal | undefined {
    const k = fromHex(keyHex);
    return k && k.length === 32 ? this.perms.principal(publicKeyToDidKey(k)) : undefined;
  }

  private siteOf(authorHex: string): string | undefined {
    if (authorHex === this.self.key) return this.self.site;
    return this.principalOf(authorHex)?.site;
  }

  /** May the peer (key hex) hold the blocks of `author`'s `stream`? */
  mayHold(peerHex: string, authorHex: string, stream: string): CheckResult {
    // Its own blocks always: a wiped gateway restores its chains from its siblings.
    if (peerHex === authorHex) return { allowed: true };
    const peer = this.principalOf(peerHex);
    if (stream === ACL_STREAM) {
      return peer
        ? { allowed: true }
        : {
            allowed: false,
            policy: ACL_STREAM,
            missing: 'holder',
            reason: `peer ${peerHex.slice(0, 16)}… is not a known principal`,
          };
    }
    if (stream === CURSOR_STREAM)
      return peer?.kind === 'gateway'
        ? { allowed: true }
        : {
            allowed: false,
            policy: CURSOR_STREAM,
            missing: 'gateway',
            reason: `peer ${peerHex.slice(0, 16)}… is not a sibling gateway`,
          };
    const policy = this.perms.policy(stream);
    if (!policy)
      return {
        allowed: false,
        policy: stream,
        missing: 'policy',
        reason: `no policy "${stream}" here, so its blocks are not passed on`,
      };
    const tag = `${policy.name}@${policy.version}`;
    if (!peer)
      return {
        allowed: false,
        policy: tag,
        missing: 'holder',
        reason: `peer ${peerHex.slice(0, 16)}… is not a known principal`,
      };
    const deny = (missing: string, reason: string): CheckResult => ({ allowed: false, policy: tag, missing, reason });
    switch (policy.reach) {
      case 'gateway':
        return deny('reach:gateway', `${policy.name} stays on the gateway that logged it`);
      case 'site': {
        const site = this.siteOf(authorHex);
        if (peer.kind !== 'gateway')
          return deny('reach:site', `${peer.id} is a ${peer.kind}, ${policy.name} stays on its site`);
        if (site === undefined || peer.site !== site)
          return deny(
            'reach:site',
            `${peer.id} (site ${peer.site ?? 'unknown'}) is not on the site of the author (${site ?? 'unknown'})`,
          );
        break;
      }
      case 'fleet':
        if (peer.kind !== 'gateway')
          return deny('reach:fleet', `${peer.id} is a ${peer.kind}, ${policy.name} stays in the fleet`);
        break;
      case 'cloud':
        if (peer.kind !== 'gateway' && peer.kind !== 'cloud')
          return deny('reach:cloud', `${peer.id} is a ${peer.kind}, not a gateway or cloud peer`);
        break;
    }
    return this.perms.check(peer, 'hold', policy.name);
  }

  /** May the peer read (decrypt) a stream it may hold? For confidential policies (policy B). */
  mayRead(peerHex: string, stream: string): CheckResult {
    const peer = this.principalOf(peerHex);
    if (!peer) return { allowed: false, policy: stream, missing: 'reader', reason: 'unknown peer' };
    return this.perms.check(peer, 'read', stream);
  }

  /** The engine's filter for one authenticated peer; evaluated per exchange, so grants apply at once. */
  offerTo = (peerHex: string): StreamFilter => {
    const cache = new Map<string, boolean>();
    return (author, stream) => {
      const k = `${author}/${stream}`;
      let ok = cache.get(k);
      if (ok === undefined) {
        const r = this.mayHold(peerHex, author, stream);
        ok = r.allowed;
        cache.set(k, ok);
        const key = `${peerHex}/${k}`;
        if (!r.allowed) {
          const peerId = this.principalOf(peerHex)?.id;
          const refusal: SyncRefusal = {
            peer: peerHex,
            ...(peerId !== undefined && { peerId }),
            author,
            stream,
            policy: r.policy,
            missing: r.missing,
            reason: r.reason,
          };
          if (!this.refused.has(key)) this.onRefuse?.(refusal);
          this.refused.set(key, refusal);
        } else this.refused.delete(key);
      }
      return ok;
    };
  };

  /** Streams withheld from peers, with the policy and the missing permission. */
  refusals(): SyncRefusal[] {
    return [...this.refused.values()];
  }
}
