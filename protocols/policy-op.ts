/**
 * Body of a `policy` block (kind 3): one grant or revocation of a relation on
 * a policy to a principal, signed by an admin key, plus the causal context
 * the logging gateway adds (`after`: the ops on the same (principal,
 * relation, policy) it had seen, which this op supersedes).
 *
 *   {1: op (1 grant | 2 revoke), 2: principal ref, 3: relation, 4: policy,
 *    5: issuedAt ms, 6: admin key (32 bytes), 7: admin signature (64 bytes),
 *    8: [after op ids (32-byte block hashes), sorted]}
 *
 * The admin signs `"outpost/policy-op/v1\0" ‖ canonical {1..6}`: the op, not
 * the block (the block's author is the gateway that logged it, which signs the
 * block as usual). `after` is outside the admin signature: it records what the
 * logging gateway knew, which only a block author can say.
 */
import { type CborValue, decodeCbor } from './cbor.js';
import { concatBytes } from './bytes.js';
import { encodeCanonical, HASH_BYTES } from './block.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

const POLICY_OP_DOMAIN = new TextEncoder().encode('outpost/policy-op/v1\0');
const MAX_OP_AFTER = 64;
const MAX_REF = 200;
const MAX_WORD = 64;

export type PolicyOpKind = 'grant' | 'revoke';

/** What the admin signs. */
export interface PolicyOpClaim {
  readonly op: PolicyOpKind;
  /** A did:key, a principal name, `group:G` or `role:R`. */
  readonly principal: string;
  readonly relation: string;
  readonly policy: string;
  readonly issuedAt: number;
  /** The admin's raw Ed25519 key. */
  readonly admin: Uint8Array;
}

export interface PolicyOp extends PolicyOpClaim {
  readonly signature: Uint8Array;
  /** Ops (block hashes) this one supersedes, sorted and distinct. */
  readonly after: readonly Uint8Array[];
}

const OP_CODE = { grant: 1, revoke: 2 } as const;

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function claimMap(c: PolicyOpClaim): Map<number, CborValue> {
  return new Map<number, CborValue>([
    [1, OP_CODE[c.op]],
    [2, c.principal],
    [3, c.relation],
    [4, c.policy],
    [5, c.issuedAt],
    [6, c.admin],
  ]);
}

function checkClaim(c: PolicyOpClaim): void {
  if (c.op !== 'grant' && c.op !== 'revoke')
    throw new ProtocolUsageError('policy-op/bad-op', 'op must be grant or revoke');
  if (c.principal.length === 0 || c.principal.length > MAX_REF)
    throw new ProtocolUsageError('policy-op/bad-principal', `principal must be 1..${MAX_REF} characters`);
  for (const [w, v] of [
    ['relation', c.relation],
    ['policy', c.policy],
  ] as const) {
    if (v.length === 0 || v.length > MAX_WORD)
      throw new ProtocolUsageError('policy-op/bad-name', `${w} must be 1..${MAX_WORD} characters`);
  }
  if (!Number.isSafeInteger(c.issuedAt) || c.issuedAt < 0)
    throw new ProtocolUsageError('policy-op/bad-time', 'issuedAt must be unsigned ms');
  if (c.admin.length !== 32) throw new ProtocolUsageError('policy-op/bad-admin', 'admin must be a 32-byte key');
}

/** The bytes an admin signs for a claim. Throws ProtocolUsageError for a malformed claim. */
export function policyOpSigningInput(c: PolicyOpClaim): Uint8Array {
  checkClaim(c);
  return concatBytes(POLICY_OP_DOMAIN, encodeCanonical(claimMap(c)));
}

/** The canonical body value of a policy block (what `Block.body` holds). */
export function policyOpBody(op: PolicyOp): CborValue {
  checkClaim(op);
  if (op.signature.length !== 64) throw new ProtocolUsageError('policy-op/bad-signature', 'signature must be 64 bytes');
  if (op.after.length > MAX_OP_AFTER || op.after.some((h) => h.length !== HASH_BYTES))
    throw new ProtocolUsageError('policy-op/bad-after', `after holds at most ${MAX_OP_AFTER} 32-byte hashes`);
  const after = [...op.after].sort(compare).filter((h, i, a) => i === 0 || compare(a[i - 1]!, h) !== 0);
  const m = claimMap(op);
  m.set(7, op.signature);
  m.set(8, after);
  return m;
}

export const encodePolicyOp = (op: PolicyOp): Uint8Array => encodeCanonical(policyOpBody(op));

const str = (v: CborValue | undefined, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max;

/** Reads a policy block's body. Never throws. */
export function readPolicyOp(v: CborValue): Result<PolicyOp> {
  if (!(v instanceof Map)) return fail('policy-op/not-a-map', 'a policy op is a map');
  for (const k of v.keys())
    if (typeof k !== 'number' || k < 1 || k > 8) return fail('policy-op/unknown-key', `unknown key ${String(k)}`);
  const code = v.get(1);
  const op = code === 1 ? 'grant' : code === 2 ? 'revoke' : undefined;
  if (!op) return fail('policy-op/bad-op', `op ${String(code)} is not 1 (grant) or 2 (revoke)`);
  const principal = v.get(2);
  const relation = v.get(3);
  const policy = v.get(4);
  if (!str(principal, MAX_REF) || !str(relation, MAX_WORD) || !str(policy, MAX_WORD))
    return fail('policy-op/bad-name', 'principal, relation and policy must be text');
  const issuedAt = v.get(5);
  if (typeof issuedAt !== 'number' || !Number.isSafeInteger(issuedAt) || issuedAt < 0)
    return fail('policy-op/bad-time', 'issuedAt must be unsigned ms');
  const admin = v.get(6);
  const signature = v.get(7);
  if (!(admin instanceof Uint8Array) || admin.length !== 32)
    return fail('policy-op/bad-admin', 'admin must be a 32-byte key');
  if (!(signature instanceof Uint8Array) || signature.length !== 64)
    return fail('policy-op/bad-signature', 'signature must be 64 bytes');
  const after = v.get(8);
  if (
    !Array.isArray(after) ||
    after.length > MAX_OP_AFTER ||
    !after.every((h) => h instanceof Uint8Array && h.length === HASH_BYTES)
  )
    return fail('policy-op/bad-after', 'after must be an array of hashes');
  return ok({ op, principal, relation, policy, issuedAt, admin, signature, after: after as Uint8Array[] });
}

/** Decodes a policy op from bytes (the CLI's hand-off files). Never throws. */
export function decodePolicyOp(bytes: Uint8Array): Result<PolicyOp> {
  const r = decodeCbor(bytes, { maxBytes: 4096, maxDepth: 3, maxItems: 256, maxContainerLength: 128 });
  if (!r.ok) return r;
  const d = readPolicyOp(r.value);
  if (!d.ok) return d;
  if (compare(encodePolicyOp(d.value), bytes) !== 0)
    return fail('policy-op/non-canonical', 'policy op bytes are not canonical');
  return d;
}
