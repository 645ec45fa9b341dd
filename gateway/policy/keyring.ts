/**
 * Data keys of confidential policies, as the block log's
 * `BlockCrypto` hook (gateway/log/sealing.ts).
 *
 * Each author gateway has its own data key per (policy, epoch). Before its
 * first confidential block under a policy, and whenever the readers change, it
 * authors a `keys` block on that policy's stream wrapping the key for every
 * reader and for itself (so a restored gateway reads its own data again). The
 * wraps travel by sync like any block; every gateway learns the keys wrapped
 * for it from the keys blocks it holds, so nothing secret but the identity
 * seed is stored.
 * - Any change of readers starts a new epoch with a fresh key wrapped for the
 *   readers of now: a removed reader (revoked, or gone from the policy file) gets
 *   no key for data written from then on; an added one reads from its grant on
 *   (older epochs stay closed to it, so a reader revoked and granted again does
 *   not read what was written in between).
 */
import { type Block, decodeKeysBody, fail, type Result, type SealAlg, toHex } from '../../protocols/index.js';
import type { BlockCrypto } from '../log/sealing.js';
import {
  type DataKey,
  keysBlockBody,
  newDataKey,
  openBlock,
  PolicyCryptoError,
  type Recipient,
  sealBlock,
  sealedEpoch,
  unwrapDataKey,
  wrapDataKey,
  x25519FromEd25519Public,
} from './seal.js';

/** Most wraps per keys block (protocols/sealed.ts MAX_RECIPIENTS). */
const WRAPS_PER_BLOCK = 256;

/** A block's policy is `name@version` or a bare name; keys belong to the name, so a new version needs no new key. */
const policyName = (tag: string): string => {
  const at = tag.lastIndexOf('@');
  return at > 0 ? tag.slice(0, at) : tag;
};

export interface KeyRingOptions {
  /** This gateway: raw Ed25519 public key and the X25519 secret of its seed. */
  readonly me: Recipient;
  /** Raw Ed25519 keys of a policy's readers (by name); undefined when the policy is not confidential. Default: none is (see `attach`). */
  readonly readersOf?: (policy: string) => readonly Uint8Array[] | undefined;
  readonly alg?: SealAlg;
  /**
   * Resolves once everything queued so far is on disk (Store.durable). When the transaction
   * holding a new epoch's keys block fails (disk full), the next block starts another epoch,
   * so no data is sealed under a key whose wraps were never written.
   */
  readonly durable?: () => Promise<void>;
}

interface OwnKey {
  readonly dk: DataKey;
  /** Hex keys the current epoch is wrapped for. */
  readonly recipients: Set<string>;
}

export class KeyRing implements BlockCrypto {
  /** `${author hex}/${policy}/${epoch}` → data key, for every wrap this gateway can open. */
  private readonly keys = new Map<string, Uint8Array>();
  /** The key this gateway seals with, per policy. */
  private readonly own = new Map<string, OwnKey>();
  private readonly maxOwnEpoch = new Map<string, number>();
  private readonly forceRotate = new Set<string>();
  /** Policies whose new epoch's keys block is queued but not yet known durable. */
  private readonly unconfirmed = new Set<string>();
  private readonly readersCache = new Map<string, readonly Uint8Array[] | undefined>();
  private readonly meHex: string;
  /** Keys blocks seen, and wraps opened (figures for status and tests). */
  readonly stats = { keysBlocks: 0, unwrapped: 0, badWraps: 0, epochsStarted: 0, badReaders: 0 };

  private readersOf: (policy: string) => readonly Uint8Array[] | undefined;
  private unsubscribe?: () => void;

  constructor(private readonly opts: KeyRingOptions) {
    this.meHex = toHex(opts.me.publicKey);
    this.readersOf = opts.readersOf ?? (() => undefined);
  }

  /**
   * Takes the readers of confidential policies from the permission API, and asks again
   * whenever a grant or revocation changes them (a revoke then starts a new epoch).
   */
  attach(
    perms: PermissionSource & {
      readonly changes$?: { subscribe(fn: (c: { readonly policy: string }) => void): { unsubscribe(): void } };
    },
  ): void {
    this.readersOf = readersFrom(perms);
    this.unsubscribe?.();
    const sub = perms.changes$?.subscribe((c) => this.invalidate(c.policy));
    this.unsubscribe = sub && (() => sub.unsubscribe());
    this.invalidate();
  }

  /** The readers may have changed (a grant, a revoke, a reloaded policy file): ask again before the next block. */
  invalidate(policy?: string): void {
    if (policy === undefined) this.readersCache.clear();
    else this.readersCache.delete(policyName(policy));
  }

  /** Start a new epoch for the policy's next block even if the readers look unchanged. */
  rotate(policy: string): void {
    this.forceRotate.add(policyName(policy));
    this.invalidate(policy);
  }

  /** For the gateway status: the epoch and reader count each confidential policy is sealed under here, and the counters. */
  status(): Record<string, unknown> {
    return {
      sealing: [...this.own].map(([policy, o]) => ({ policy, epoch: o.dk.epoch, recipients: o.recipients.size })),
      keysHeld: this.keys.size,
      ...this.stats,
    };
  }

  /** The epoch this gateway currently seals a policy under, if any. */
  currentEpoch(policy: string): number | undefined {
    return this.own.get(policyName(policy))?.dk.epoch;
  }

  /** Whether this gateway holds the key of (author, policy, epoch). */
  hasKey(author: Uint8Array | string, policy: string, epoch: number): boolean {
    return this.keys.has(`${typeof author === 'string' ? author : toHex(author)}/${policyName(policy)}/${epoch}`);
  }

  private readers(policy: string): readonly Uint8Array[] | undefined {
    if (!this.readersCache.has(policy)) {
      // A key that has no X25519 form cannot be wrapped for (the loader refuses such keys; this keeps ingest safe anyway).
      const keys = this.readersOf(policy)?.filter((k) => {
        try {
          x25519FromEd25519Public(k);
          return true;
        } catch {
          this.stats.badReaders++;
          return false;
        }
      });
      this.readersCache.set(policy, keys);
    }
    return this.readersCache.get(policy);
  }

  beforeAppend(tag: string): Pick<Block, 'kind' | 'body'>[] {
    const policy = policyName(tag);
    const readers = this.readers(policy);
    if (readers === undefined) return [];
    const want = new Map<string, Uint8Array>([[this.meHex, this.opts.me.publicKey]]);
    for (const r of readers) want.set(toHex(r), r);
    const cur = this.own.get(policy);
    const changed =
      cur !== undefined && (cur.recipients.size !== want.size || [...cur.recipients].some((r) => !want.has(r)));
    if (cur === undefined || changed || this.forceRotate.has(policy)) {
      const epoch = (this.maxOwnEpoch.get(policy) ?? -1) + 1;
      const dk = newDataKey(epoch);
      this.own.set(policy, { dk, recipients: new Set(want.keys()) });
      this.maxOwnEpoch.set(policy, epoch);
      this.keys.set(`${this.meHex}/${policy}/${epoch}`, dk.key);
      this.forceRotate.delete(policy);
      this.unconfirmed.add(policy);
      this.stats.epochsStarted++;
      return this.wrapBlocks(tag, dk, [...want.values()]);
    }
    return [];
  }

  confidential(tag: string): boolean {
    return this.readers(policyName(tag)) !== undefined;
  }

  /** Wraps are bound to the block's own policy tag (its AAD), so they are made for `tag`. */
  private wrapBlocks(tag: string, dk: DataKey, recipients: Uint8Array[]): Pick<Block, 'kind' | 'body'>[] {
    const out: Pick<Block, 'kind' | 'body'>[] = [];
    for (let i = 0; i < recipients.length; i += WRAPS_PER_BLOCK) {
      out.push({
        kind: 'keys',
        body: keysBlockBody(wrapDataKey(this.opts.me.publicKey, tag, dk, recipients.slice(i, i + WRAPS_PER_BLOCK))),
      });
    }
    return out;
  }

  seal(block: Block): Block {
    const policy = policyName(block.policy);
    if (block.kind !== 'frames' || this.readers(policy) === undefined) return block;
    const cur = this.own.get(policy);
    if (!cur)
      throw new PolicyCryptoError(
        'policy-crypto/no-epoch',
        `no data key for confidential policy ${block.policy}: beforeAppend was not called`,
      );
    if (this.unconfirmed.delete(policy) && this.opts.durable) {
      // The keys block is queued by now (it is authored first), so this covers its transaction.
      const epoch = cur.dk.epoch;
      // Handled: the keys block may not have landed, so the next block of this policy rotates anew.
      this.opts.durable().catch(() => {
        if (this.own.get(policy)?.dk.epoch === epoch) this.forceRotate.add(policy);
      });
    }
    return sealBlock(block, cur.dk, this.opts.alg);
  }

  open(block: Block): Result<Block> {
    const epoch = sealedEpoch(block);
    if (!epoch.ok) return epoch;
    const key = this.keys.get(`${toHex(block.author)}/${policyName(block.policy)}/${epoch.value}`);
    if (key === undefined)
      return fail(
        'sealed/no-key',
        `no key for ${toHex(block.author).slice(0, 8)}/${policyName(block.policy)} epoch ${epoch.value}`,
      );
    return openBlock(block, key);
  }

  observe(block: Block): void {
    if (block.kind !== 'keys') return;
    this.stats.keysBlocks++;
    const body = decodeKeysBody(block.body);
    if (!body.ok) return void this.stats.badWraps++;
    const author = toHex(block.author);
    const policy = policyName(block.policy);
    const id = `${author}/${policy}/${body.value.epoch}`;
    let key = this.keys.get(id);
    if (key === undefined && body.value.wraps.some((w) => toHex(w.recipient) === this.meHex)) {
      const r = unwrapDataKey(block, this.opts.me);
      if (r.ok && r.value) {
        key = r.value.key;
        this.keys.set(id, key);
        this.stats.unwrapped++;
      } else this.stats.badWraps++;
    }
    if (author !== this.meHex) return;
    // Our own wraps (at start, or received back after a restore): continue the latest epoch.
    const epoch = body.value.epoch;
    this.maxOwnEpoch.set(policy, Math.max(epoch, this.maxOwnEpoch.get(policy) ?? -1));
    const cur = this.own.get(policy);
    if (key === undefined || (cur !== undefined && cur.dk.epoch > epoch)) return;
    const recipients = cur?.dk.epoch === epoch ? cur.recipients : new Set<string>();
    for (const w of body.value.wraps) recipients.add(toHex(w.recipient));
    this.own.set(policy, { dk: { epoch, key }, recipients });
  }
}

/** `readersOf` for a KeyRing from the permission API: confidential policies' readers' keys. */
export interface PermissionSource {
  policy(name: string): { readonly confidential: boolean } | undefined;
  readers(name: string): readonly { readonly publicKey: Uint8Array }[];
}

export function readersFrom(perms: PermissionSource): (policy: string) => readonly Uint8Array[] | undefined {
  return (name) => {
    if (!perms.policy(name)?.confidential) return undefined;
    return perms.readers(name).map((p) => p.publicKey);
  };
}
