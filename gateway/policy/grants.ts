/**
 * The grant/revoke state: a CRDT over the policy blocks (kind 3) of the log.
 *
 * Each op names (principal ref, relation, policy) and the ops on that same key
 * it supersedes (`after`, recorded by the gateway that logged it: what it had
 * seen). The ops in force on a key are those no other op supersedes; the key
 * is `revoked` if any op in force is a revoke (revoke wins over a concurrent
 * grant), `granted` if they are all grants, and has no state without ops. A
 * grant logged after the gateway saw a revoke supersedes it and re-grants. The
 * state is a function of the set of op blocks held, so every replica holding
 * the same blocks computes the same state, whatever the arrival order.
 *
 * An op counts only if its admin signature verifies and its admin key is
 * listed in the policy file (`admins`); others are kept in the log but ignored.
 */
import { decodeSignedBlock, type SignedBlock, toHex } from '../../protocols/index.js';
import { type PolicyOp, policyOpSigningInput, readPolicyOp } from '../../protocols/policy-op.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { BlockLog } from '../log/block-log.js';
import { type GrantStatus, type GrantView, RELATIONS, type Relation } from './permissions.js';

/** The stream (and block policy) grants and revocations are logged on. */
export const ACL_STREAM = '$acl';

interface Op {
  readonly id: string;
  readonly op: 'grant' | 'revoke';
  readonly key: string;
  readonly after: readonly string[];
}

export interface IgnoredOp {
  readonly block: string;
  readonly reason: string;
}

const keyOf = (ref: string, relation: string, policy: string): string => `${ref}\u0000${relation}\u0000${policy}`;

export class GrantState implements GrantView {
  private readonly ops = new Map<string, Op>();
  private readonly byKey = new Map<string, Set<string>>();
  /** Ops named in some other op's `after`, per key. */
  private readonly superseded = new Map<string, Set<string>>();
  readonly ignored: IgnoredOp[] = [];

  constructor(
    /** Raw admin keys (hex) whose signatures count. */
    private readonly adminKeys: ReadonlySet<string>,
    /** Called when a key's status changes. */
    private readonly onChange?: (c: { ref: string; relation: Relation; policy: string; status: GrantStatus }) => void,
  ) {}

  /** Reads every policy block the log holds (at start). */
  static fromLog(log: BlockLog, adminKeys: ReadonlySet<string>, onChange?: GrantState['onChange']): GrantState {
    const s = new GrantState(adminKeys, onChange);
    for (const h of log.streamHeads()) {
      if (h.stream !== ACL_STREAM) continue;
      for (const [, hash] of log.streamBlocks(h.author, h.stream)) {
        const env = log.getEnvelope(hash);
        const d = env && decodeSignedBlock(env);
        if (d?.ok) s.addBlock(d.value);
      }
    }
    log.onDurableBlock((sb) => {
      if (sb.block.kind === 'policy') s.addBlock(sb);
    });
    return s;
  }

  /** Adds one policy block; returns the op's effect, or why it was ignored. */
  addBlock(sb: SignedBlock): { added: boolean; reason?: string } {
    const id = toHex(sb.hash);
    if (this.ops.has(id)) return { added: false, reason: 'known' };
    if (sb.block.kind !== 'policy') return this.ignore(id, 'not a policy block');
    // Read at start from $acl streams only (not by walking every block), so only those count anywhere.
    if (sb.block.stream !== ACL_STREAM)
      return this.ignore(id, `a policy block on stream ${sb.block.stream}, not ${ACL_STREAM}`);
    const r = readPolicyOp(sb.block.body);
    if (!r.ok) return this.ignore(id, `${r.error.code}: ${r.error.message}`);
    const op = r.value;
    const bad = verifyOp(op, this.adminKeys);
    if (bad) return this.ignore(id, bad);
    const key = keyOf(op.principal, op.relation, op.policy);
    const before = this.statusOfKey(key);
    const rec: Op = { id, op: op.op, key, after: op.after.map(toHex) };
    this.ops.set(id, rec);
    let ids = this.byKey.get(key);
    if (!ids) this.byKey.set(key, (ids = new Set()));
    ids.add(id);
    let sup = this.superseded.get(key);
    if (!sup) this.superseded.set(key, (sup = new Set()));
    for (const a of rec.after) sup.add(a);
    const after = this.statusOfKey(key);
    if (after !== before)
      this.onChange?.({ ref: op.principal, relation: op.relation as Relation, policy: op.policy, status: after });
    return { added: true };
  }

  private ignore(block: string, reason: string): { added: false; reason: string } {
    this.ignored.push({ block, reason });
    return { added: false, reason };
  }

  /** The ops in force on a key (not superseded), as block hashes: what a new op on it supersedes. */
  inForce(ref: string, relation: string, policy: string): string[] {
    const key = keyOf(ref, relation, policy);
    const sup = this.superseded.get(key);
    return [...(this.byKey.get(key) ?? [])].filter((id) => !sup?.has(id)).sort();
  }

  private statusOfKey(key: string): GrantStatus {
    const ids = this.byKey.get(key);
    if (!ids) return undefined;
    const sup = this.superseded.get(key);
    let any = false;
    for (const id of ids) {
      if (sup?.has(id)) continue;
      if (this.ops.get(id)!.op === 'revoke') return 'revoked';
      any = true;
    }
    return any ? 'granted' : undefined;
  }

  status(ref: string, relation: Relation, policy: string): GrantStatus {
    return this.statusOfKey(keyOf(ref, relation, policy));
  }

  *granted(): Iterable<{ ref: string; relation: Relation; policy: string }> {
    for (const key of this.byKey.keys()) {
      if (this.statusOfKey(key) !== 'granted') continue;
      const [ref, relation, policy] = key.split('\u0000') as [string, Relation, string];
      yield { ref, relation, policy };
    }
  }

  /** Every key with a state, sorted: equal on replicas holding the same op blocks. */
  snapshot(): { ref: string; relation: string; policy: string; status: GrantStatus }[] {
    return [...this.byKey.keys()]
      .sort()
      .map((key) => {
        const [ref, relation, policy] = key.split('\u0000') as [string, string, string];
        return { ref, relation, policy, status: this.statusOfKey(key) };
      })
      .filter((x) => x.status !== undefined);
  }
}

/** Why an op does not count (undefined if it does). */
export function verifyOp(op: PolicyOp, adminKeys: ReadonlySet<string>): string | undefined {
  if (!(RELATIONS as readonly string[]).includes(op.relation)) return `unknown relation "${op.relation}"`;
  if (!adminKeys.has(toHex(op.admin)))
    return `key ${toHex(op.admin).slice(0, 16)}… is not an admin key of the policy file`;
  if (!verifyEd25519(op.admin, policyOpSigningInput(op), op.signature)) return 'admin signature does not verify';
  return undefined;
}
