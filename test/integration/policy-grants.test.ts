/**
 * Grants and revocations as signed blocks in real lmdb block logs
 * (gateway/policy/grants.ts): a grant and a revoke racing on two partitioned
 * gateways converge to the same permission state (revoke wins); a grant made
 * after seeing the revoke re-grants; any arrival order of the same op blocks
 * gives the same state (property); ops not signed by an admin key do not
 * count; and once a holder is revoked, no block written after the revocation
 * is offered to it by sync.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { ACL_STREAM, GrantState } from '../../gateway/policy/grants.js';
import { parsePolicyText } from '../../gateway/policy/load.js';
import { Permissions } from '../../gateway/policy/permissions.js';
import { SyncPolicy } from '../../gateway/policy/sync-filter.js';
import { Store } from '../../gateway/store/store.js';
import { exchange } from '../../gateway/sync/engine.js';
import { decodeSignedBlock, publicKeyToDidKey, type SignedBlock, toHex } from '../../protocols/index.js';
import { policyOpBody, policyOpSigningInput } from '../../protocols/policy-op.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const adminSeed = randomBytes(32);
const admin = publicKeyFromSeed(adminSeed);
const adminKeys = new Set([toHex(admin)]);
const alice = publicKeyToDidKey(publicKeyFromSeed(randomBytes(32)));
const dev = testDevice('press-1');

interface Replica {
  log: BlockLog;
  grants: GrantState;
  key: Uint8Array;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function replicas(n: number): Replica[] {
  const seeds = Array.from({ length: n }, () => randomBytes(32));
  const keys = seeds.map(publicKeyFromSeed);
  return seeds.map((seed, i) => {
    const { dir, cleanup } = tempDir('outpost-grants-');
    const store = Store.open(dir);
    store.devices.putSync(dev.id, { id: dev.id, publicKey: dev.publicKeyHex, enrolledAt: 1 });
    const log = new BlockLog(store, { publicKey: keys[i]!, sign: (m) => signEd25519(seed, m), knownAuthors: keys });
    closers.push(async () => {
      // Let the log's on-durable callbacks run before the store closes under them.
      await log.durable();
      await new Promise((r) => setImmediate(r));
      await store.close();
      cleanup();
    });
    return { log, grants: GrantState.fromLog(log, adminKeys), key: keys[i]! };
  });
}

/** What the gateway's inbox does with an admin-signed op: supersede the ops in force on the key, log it on $acl. */
function logOp(
  r: Replica,
  op: 'grant' | 'revoke',
  principal: string,
  relation = 'reader',
  policy = 'vibration',
  signer = adminSeed,
): SignedBlock {
  const claim = { op, principal, relation, policy, issuedAt: Date.now(), admin: publicKeyFromSeed(signer) };
  const after = r.grants.inForce(principal, relation, policy).map((h) => Buffer.from(h, 'hex'));
  const sb = r.log.appendBlock(
    {
      kind: 'policy',
      body: policyOpBody({ ...claim, signature: signEd25519(signer, policyOpSigningInput(claim)), after }),
    },
    ACL_STREAM,
  );
  r.grants.addBlock(sb);
  return sb;
}

/** Blocks are sent once durable (the log reads envelopes from lmdb). */
async function sync(a: Replica, b: Replica): Promise<void> {
  await Promise.all([a.log.durable(), b.log.durable()]);
  await exchange(a.log, b.log);
}

describe('grant/revoke CRDT over the log', () => {
  it('[grant and revoke racing on two partitioned gateways converge] revoke wins; a later grant re-grants', async () => {
    const [a, b] = replicas(2);
    logOp(a!, 'grant', alice);
    await sync(a!, b!);
    expect(b!.grants.status(alice, 'reader', 'vibration')).toBe('granted');
    // Partitioned: a revokes, b (not having seen it) grants again.
    logOp(a!, 'revoke', alice);
    logOp(b!, 'grant', alice);
    expect(a!.grants.status(alice, 'reader', 'vibration')).toBe('revoked');
    expect(b!.grants.status(alice, 'reader', 'vibration')).toBe('granted');
    await sync(a!, b!);
    expect(a!.grants.status(alice, 'reader', 'vibration')).toBe('revoked');
    expect(b!.grants.status(alice, 'reader', 'vibration')).toBe('revoked');
    expect(a!.grants.snapshot()).toEqual(b!.grants.snapshot());
    // A grant logged after the revoke was seen supersedes it.
    logOp(b!, 'grant', alice);
    await sync(a!, b!);
    expect(a!.grants.status(alice, 'reader', 'vibration')).toBe('granted');
    expect(b!.grants.snapshot()).toEqual(a!.grants.snapshot());
  });

  it('[defined order] random ops and partial syncs on three gateways converge to one state (property)', async () => {
    const keys = [alice, 'group:maintenance'];
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('op' as const),
        at: fc.nat(2),
        op: fc.constantFrom('grant' as const, 'revoke' as const),
        who: fc.nat(1),
        rel: fc.constantFrom('reader', 'holder'),
      }),
      fc.record({ kind: fc.constant('sync' as const), a: fc.nat(2), b: fc.nat(2) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
        const rs = replicas(3);
        try {
          for (const s of steps) {
            if (s.kind === 'op') logOp(rs[s.at]!, s.op, keys[s.who]!, s.rel);
            else if (s.a !== s.b) await sync(rs[s.a]!, rs[s.b]!);
          }
          await rs[0]!.log.durable();
          await sync(rs[0]!, rs[1]!);
          await sync(rs[1]!, rs[2]!);
          await sync(rs[0]!, rs[1]!);
          const snap = rs[0]!.grants.snapshot();
          expect(rs[1]!.grants.snapshot()).toEqual(snap);
          expect(rs[2]!.grants.snapshot()).toEqual(snap);
          // The state is a function of the blocks: any arrival order gives it.
          const blocks: SignedBlock[] = [];
          for (const h of rs[0]!.log.streamHeads().filter((x) => x.stream === ACL_STREAM)) {
            for (const [, hash] of rs[0]!.log.streamBlocks(h.author, h.stream)) {
              const d = decodeSignedBlock(rs[0]!.log.getEnvelope(hash)!);
              if (d.ok) blocks.push(d.value);
            }
          }
          for (let k = 0; k < 3; k++) {
            const fresh = new GrantState(adminKeys);
            for (const sb of [...blocks].sort(() => Math.random() - 0.5)) fresh.addBlock(sb);
            expect(fresh.snapshot()).toEqual(snap);
          }
        } finally {
          for (const c of closers.splice(0)) await c();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('[rules run as a principal] grants layer over the file: a revoke on the principal beats its group, a grant to a group adds its members', async () => {
    const [a] = replicas(1);
    const rule = publicKeyToDidKey(publicKeyFromSeed(randomBytes(32)));
    const bob = publicKeyToDidKey(publicKeyFromSeed(randomBytes(32)));
    const set = parsePolicyText(
      `principals:
  alice: { key: "${alice}", kind: operator }
  bob: { key: "${bob}", kind: operator }
  stop-rule: { key: "${rule}", kind: rule }
groups:
  maintenance: [alice]
  night: [bob]
policies:
  vibration: { relations: { reader: [group:maintenance], actuator: [stop-rule] } }
`,
      'p.yaml',
    );
    const perms = new Permissions(set);
    const changes: string[] = [];
    perms.changes$.subscribe((c) => changes.push(`${c.ref} ${c.relation} ${c.status}`));
    // As the gateway wires it (runtime.ts): state changes reach the permissions' changes$.
    a!.grants = GrantState.fromLog(a!.log, adminKeys, (c) => perms.notify(c));
    perms.attachGrants(a!.grants);
    expect(perms.check(rule, 'actuate', 'vibration')).toEqual({ allowed: true });
    expect(perms.check(rule, 'read', 'vibration')).toMatchObject({
      allowed: false,
      policy: 'vibration@1',
      missing: 'reader',
    });
    expect(perms.check(alice, 'read', 'vibration')).toEqual({ allowed: true });
    logOp(a!, 'revoke', alice);
    expect(perms.check(alice, 'read', 'vibration')).toMatchObject({ allowed: false, missing: 'reader' });
    expect(perms.check(bob, 'read', 'vibration')).toMatchObject({ allowed: false });
    logOp(a!, 'grant', 'group:night');
    expect(perms.check(bob, 'read', 'vibration')).toEqual({ allowed: true });
    logOp(a!, 'grant', rule, 'reader');
    expect(perms.check(rule, 'read', 'vibration')).toEqual({ allowed: true });
    expect(
      perms
        .readers('vibration')
        .map((p) => p.id)
        .sort(),
    ).toEqual(['bob', 'stop-rule']);
    expect(changes).toEqual([`${alice} reader revoked`, 'group:night reader granted', `${rule} reader granted`]);
  });

  it('[signed by an admin key] an op signed by another key is logged but does not count', async () => {
    const [a] = replicas(1);
    const sb = logOp(a!, 'grant', alice, 'reader', 'vibration', randomBytes(32));
    expect(a!.grants.status(alice, 'reader', 'vibration')).toBeUndefined();
    expect(a!.grants.ignored).toEqual([
      { block: toHex(sb.hash), reason: expect.stringMatching(/is not an admin key/) },
    ]);
  });

  it('[no data written after the revocation reaches the revoked principal] sync stops offering the stream to a revoked holder', async () => {
    const [a, b] = replicas(2);
    const bDid = publicKeyToDidKey(b!.key);
    const set = parsePolicyText(
      `admins: ["${publicKeyToDidKey(admin)}"]
principals:
  gw-a: { key: "${publicKeyToDidKey(a!.key)}", kind: gateway, site: s1 }
  gw-b: { key: "${bDid}", kind: gateway, site: s1 }
policies:
  vibration: { reach: fleet, relations: { holder: [gw-a, gw-b] } }
`,
      'p.yaml',
    );
    const perms = new Permissions(set, 's1');
    perms.attachGrants(a!.grants);
    const filter = new SyncPolicy(perms, { key: a!.log.author, site: 's1' });
    const offers = (): ReturnType<SyncPolicy['offerTo']> => filter.offerTo(toHex(b!.key));
    a!.log.appendFrames([{ frame: dev.frame(1, 1), rxTime: 1, transport: 'mqtt' }], 'vibration@1');
    await a!.log.durable();
    await exchange(a!.log, b!.log, { aOffers: offers() });
    expect(b!.log.streamHeads().find((h) => h.stream === 'vibration')?.seq).toBe(1); // enrolment + frames
    logOp(a!, 'revoke', bDid, 'holder');
    a!.log.appendFrames([{ frame: dev.frame(1, 2), rxTime: 2, transport: 'mqtt' }], 'vibration@1');
    await a!.log.durable();
    await exchange(a!.log, b!.log, { aOffers: offers() });
    expect(b!.log.streamHeads().find((h) => h.stream === 'vibration')?.seq).toBe(1); // nothing after the revocation
    expect(b!.log.streamHeads().find((h) => h.stream === ACL_STREAM)).toBeDefined(); // the revocation itself travels
    expect(filter.refusals()).toEqual([
      expect.objectContaining({ stream: 'vibration', policy: 'vibration@1', missing: 'holder|reader' }),
    ]);
    // Re-granted: the stream flows again.
    logOp(a!, 'grant', bDid, 'holder');
    await a!.log.durable();
    await exchange(a!.log, b!.log, { aOffers: offers() });
    expect(b!.log.streamHeads().find((h) => h.stream === 'vibration')?.seq).toBe(2);
  });
});
