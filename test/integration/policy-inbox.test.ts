/**
 * The hand-off of admin-signed ops from the CLI to the gateway
 * (gateway/policy/inbox.ts) over a real data directory and lmdb block log:
 * a queued op becomes one `$acl` block on the gateway's own stream and its
 * file is removed once durable; garbage, a non-admin signature, a tampered op
 * and an unknown policy are set aside as `.rejected` with the reason, and the
 * good ops in the same folder are still logged.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { ACL_STREAM, GrantState } from '../../gateway/policy/grants.js';
import { PENDING_DIR, PolicyInbox, queueOp } from '../../gateway/policy/inbox.js';
import { parsePolicyText } from '../../gateway/policy/load.js';
import { Store } from '../../gateway/store/store.js';
import { publicKeyToDidKey } from '../../protocols/index.js';
import { encodePolicyOp, type PolicyOp, policyOpSigningInput } from '../../protocols/policy-op.js';
import { memoryLogger, tempDir } from '../helpers/env.js';

const admin = randomBytes(32);
const alice = publicKeyToDidKey(publicKeyFromSeed(randomBytes(32)));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function signed(signer: Uint8Array, over: Partial<PolicyOp> = {}): PolicyOp {
  const claim = {
    op: 'grant' as const,
    principal: alice,
    relation: 'reader',
    policy: 'vibration',
    issuedAt: Date.now(),
    admin: publicKeyFromSeed(signer),
    ...over,
  };
  return { ...claim, signature: signEd25519(signer, policyOpSigningInput(claim)), after: [] };
}

describe('policy inbox', () => {
  it('[the CLI must not fork the stream] queued ops are logged by the gateway on its $acl stream; bad ones are set aside with the reason', async () => {
    const { dir, cleanup } = tempDir('outpost-inbox-');
    const store = Store.open(dir);
    const seed = randomBytes(32);
    const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
    cleanups.push(async () => {
      await log.durable();
      await new Promise((r) => setImmediate(r));
      await store.close();
      cleanup();
    });
    const set = parsePolicyText(
      `admins: ["${publicKeyToDidKey(publicKeyFromSeed(admin))}"]\npolicies:\n  vibration: {}\n`,
      'p.yaml',
    );
    const grants = GrantState.fromLog(log, set.adminKeys);
    const { log: logger, lines } = memoryLogger();
    const inbox = new PolicyInbox(dir, set, grants, log, logger);

    const good = queueOp(dir, signed(admin));
    const stranger = queueOp(dir, signed(randomBytes(32)));
    const unknownPolicy = queueOp(dir, signed(admin, { policy: 'nope' }));
    const tampered = queueOp(dir, signed(admin));
    const t = readFileSync(tampered);
    writeFileSync(
      tampered,
      encodePolicyOp({
        ...signed(admin),
        signature: new Uint8Array(t.subarray(t.length - 66, t.length - 2)),
        relation: 'owner',
      }),
    );
    writeFileSync(join(dir, PENDING_DIR, '000000000000000-garbage.op'), randomBytes(40));

    expect(await inbox.drain()).toBe(1);
    const left = readdirSync(join(dir, PENDING_DIR)).sort();
    expect(left.filter((f) => f.endsWith('.op'))).toEqual([]);
    expect(left.filter((f) => f.endsWith('.rejected'))).toHaveLength(4);
    expect(left).not.toContain(good.split('/').pop());
    const reason = (f: string): string => readFileSync(f.replace(/\.op$/, '.reason'), 'utf8').trim();
    expect(reason(stranger)).toMatch(/is not an admin key of the policy file/);
    expect(reason(unknownPolicy)).toBe('unknown policy "nope"');
    expect(reason(tampered)).toBe('admin signature does not verify');
    expect(reason(join(dir, PENDING_DIR, '000000000000000-garbage.op'))).toMatch(/^(cbor|policy-op)\//);
    expect(lines.filter((l) => l.msg === 'policy op refused: ' + String(l.reason))).toHaveLength(4);

    // One block on this gateway's own $acl stream, and the grant is in force.
    const acl = log.streamHeads().filter((h) => h.stream === ACL_STREAM);
    expect(acl).toEqual([expect.objectContaining({ author: log.author, seq: 0 })]);
    expect(grants.status(alice, 'reader', 'vibration')).toBe('granted');

    // A revoke queued next supersedes the grant (its `after` names it).
    queueOp(dir, signed(admin, { op: 'revoke' }));
    expect(await inbox.drain()).toBe(1);
    expect(grants.status(alice, 'reader', 'vibration')).toBe('revoked');
    expect(grants.inForce(alice, 'reader', 'vibration')).toHaveLength(1);
  });
});
