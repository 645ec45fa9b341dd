/**
 * Policy op codec (protocols/policy-op.ts, the body of kind-3 `policy` blocks):
 * round trips through bytes and through signed canonical blocks, the admin
 * signature covers the claim but not `after`, and malformed input is a typed
 * result, never a throw.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { decodeSignedBlock, encodeCanonical, signBlock } from '../../protocols/index.js';
import {
  decodePolicyOp,
  encodePolicyOp,
  type PolicyOp,
  policyOpBody,
  policyOpSigningInput,
  readPolicyOp,
} from '../../protocols/policy-op.js';

const seed = randomBytes(32);
const admin = publicKeyFromSeed(seed);
const gwSeed = randomBytes(32);
const gw = publicKeyFromSeed(gwSeed);

const text = (max: number) => fc.string({ minLength: 1, maxLength: max });
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
const opArb: fc.Arbitrary<PolicyOp> = fc.record({
  op: fc.constantFrom('grant' as const, 'revoke' as const),
  principal: text(200),
  relation: text(64),
  policy: text(64),
  issuedAt: fc.nat(),
  admin: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  after: fc.uniqueArray(hash, { maxLength: 8, selector: (h) => Buffer.from(h).toString('hex') }),
});

const sortHashes = (hs: readonly Uint8Array[]): string[] => hs.map((h) => Buffer.from(h).toString('hex')).sort();

describe('policy op codec', () => {
  it('[grants are signed blocks] round-trips through bytes (property)', () => {
    fc.assert(
      fc.property(opArb, (op) => {
        const bytes = encodePolicyOp(op);
        const d = decodePolicyOp(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        expect({ ...d.value, after: sortHashes(d.value.after) }).toEqual({ ...op, after: sortHashes(op.after) });
        expect(encodePolicyOp(d.value)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('[RFC 8949 §4.2.1] round-trips as the body of a signed canonical kind-3 block (property)', () => {
    fc.assert(
      fc.property(opArb, (op) => {
        const sb = signBlock(
          {
            author: gw,
            stream: '$acl',
            seq: 0,
            lamport: 1,
            prev: null,
            parents: [],
            policy: '$acl',
            kind: 'policy',
            body: policyOpBody(op),
          },
          (m) => signEd25519(gwSeed, m),
        );
        const d = decodeSignedBlock(sb.envelope);
        expect(d.ok).toBe(true);
        if (!d.ok || d.value.block.kind !== 'policy') throw new Error('not a policy block');
        const r = readPolicyOp(d.value.block.body);
        expect(r.ok && encodePolicyOp(r.value)).toEqual(encodePolicyOp(op));
      }),
      { numRuns: 150 },
    );
  });

  it('[signed by an admin key] the admin signature covers op, principal, relation, policy, time and key, not `after`', () => {
    const claim = {
      op: 'grant' as const,
      principal: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
      relation: 'reader',
      policy: 'vibration',
      issuedAt: 1_760_000_000_000,
      admin,
    };
    const signature = signEd25519(seed, policyOpSigningInput(claim));
    expect(verifyEd25519(admin, policyOpSigningInput(claim), signature)).toBe(true);
    for (const changed of [
      { op: 'revoke' as const },
      { principal: 'group:x' },
      { relation: 'holder' },
      { policy: 'other' },
      { issuedAt: 1 },
    ]) {
      expect(verifyEd25519(admin, policyOpSigningInput({ ...claim, ...changed }), signature)).toBe(false);
    }
    // The logging gateway adds `after`; the admin's signature still holds.
    const logged = decodePolicyOp(encodePolicyOp({ ...claim, signature, after: [randomBytes(32)] }));
    expect(logged.ok && verifyEd25519(admin, policyOpSigningInput(logged.value), logged.value.signature)).toBe(true);
  });

  it('[results, not exceptions] random bytes and wrong shapes decode to typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const d = decodePolicyOp(bytes);
        if (!d.ok) expect(d.error.code).toMatch(/^(cbor|policy-op)\//);
      }),
      { numRuns: 500 },
    );
    const good = encodePolicyOp({
      op: 'grant',
      principal: 'p',
      relation: 'reader',
      policy: 'x',
      issuedAt: 1,
      admin,
      signature: new Uint8Array(64),
      after: [],
    });
    expect(decodePolicyOp(good).ok).toBe(true);
    const cases: [unknown, string][] = [
      [[1, 2], 'policy-op/not-a-map'],
      [new Map([[1, 3]]), 'policy-op/bad-op'],
      [
        new Map<number, unknown>([
          [1, 1],
          [2, 'p'],
          [3, 'reader'],
          [4, 'x'],
          [5, -1],
        ]),
        'policy-op/bad-time',
      ],
      [
        new Map<number, unknown>([
          [1, 1],
          [2, 'p'],
          [3, 'reader'],
          [4, 'x'],
          [5, 1],
          [6, new Uint8Array(31)],
        ]),
        'policy-op/bad-admin',
      ],
      [
        new Map<number, unknown>([
          [1, 1],
          [9, 1],
        ]),
        'policy-op/unknown-key',
      ],
    ];
    for (const [v, code] of cases) {
      const d = decodePolicyOp(encodeCanonical(v as never));
      expect(d.ok ? 'ok' : d.error.code).toBe(code);
    }
  });

  it('[typed errors for misuse] encoding a malformed op throws ProtocolUsageError with a stable code', () => {
    const base = {
      op: 'grant' as const,
      principal: 'p',
      relation: 'reader',
      policy: 'x',
      issuedAt: 1,
      admin,
      signature: new Uint8Array(64),
      after: [],
    };
    expect(() => encodePolicyOp({ ...base, admin: new Uint8Array(3) })).toThrow(
      expect.objectContaining({ code: 'policy-op/bad-admin' }),
    );
    expect(() => encodePolicyOp({ ...base, principal: '' })).toThrow(
      expect.objectContaining({ code: 'policy-op/bad-principal' }),
    );
    expect(() => encodePolicyOp({ ...base, after: [new Uint8Array(5)] })).toThrow(
      expect.objectContaining({ code: 'policy-op/bad-after' }),
    );
  });
});
