/**
 * Sync under policies as a property, over real lmdb block logs: four gateways
 * on random sites (one maybe a cloud peer), three policies with random reach
 * and holder lists, random ingest under random policies and random exchanges
 * in random orders (so blocks can travel through relays), then every pair
 * exchanges. Each gateway must hold exactly the blocks an independent oracle
 * of the policy rules allows it, block by block, and probe the others equal.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog, policyStream } from '../../gateway/log/block-log.js';
import { parsePolicyText } from '../../gateway/policy/load.js';
import { Permissions, type Reach } from '../../gateway/policy/permissions.js';
import { SyncPolicy } from '../../gateway/policy/sync-filter.js';
import { Store } from '../../gateway/store/store.js';
import { exchange } from '../../gateway/sync/engine.js';
import { decodeSignedBlock, publicKeyToDidKey, toHex } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const N = 4;
const seeds = Array.from({ length: N }, () => randomBytes(32));
const keys = seeds.map(publicKeyFromSeed);
const devices = Array.from({ length: N }, (_, i) => testDevice(`dev-${i}`));

interface World {
  sites: ('s1' | 's2')[];
  cloud: boolean; // gateway 3 is a cloud peer
  policies: { reach: Reach; holders: boolean[] }[];
}

const worldArb: fc.Arbitrary<World> = fc.record({
  sites: fc.array(fc.constantFrom('s1' as const, 's2' as const), { minLength: N, maxLength: N }),
  cloud: fc.boolean(),
  policies: fc.array(
    fc.record({
      reach: fc.constantFrom<Reach>('gateway', 'site', 'fleet', 'cloud'),
      holders: fc.array(fc.boolean(), { minLength: N, maxLength: N }),
    }),
    { minLength: 3, maxLength: 3 },
  ),
});
const stepArb = fc.oneof(
  fc.record({ kind: fc.constant('ingest' as const), at: fc.nat(N - 1), policy: fc.nat(2) }),
  fc.record({ kind: fc.constant('sync' as const), a: fc.nat(N - 1), b: fc.nat(N - 1) }),
);

const isCloud = (w: World, i: number): boolean => w.cloud && i === N - 1;

function policyFile(w: World): string {
  const lines = ['principals:'];
  for (let i = 0; i < N; i++)
    lines.push(
      `  gw${i}: { key: "${publicKeyToDidKey(keys[i]!)}", kind: ${isCloud(w, i) ? 'cloud' : 'gateway'}${isCloud(w, i) ? '' : `, site: ${w.sites[i]}`} }`,
    );
  lines.push('policies:');
  w.policies.forEach((p, j) => {
    const holders = p.holders.map((h, i) => (h ? `gw${i}` : '')).filter(Boolean);
    lines.push(`  p${j}: { reach: ${p.reach}, relations: { holder: [${holders.join(', ')}] } }`);
  });
  return lines.join('\n') + '\n';
}

/** The rules, written out independently of sync-filter.ts: may gateway r hold policy p's blocks authored by a? */
function oracle(w: World, r: number, a: number, p: number): boolean {
  if (r === a) return true;
  const pol = w.policies[p]!;
  if (!pol.holders[r]) return false;
  switch (pol.reach) {
    case 'gateway':
      return false;
    case 'site':
      return !isCloud(w, r) && !isCloud(w, a) && w.sites[r] === w.sites[a];
    case 'fleet':
      return !isCloud(w, r);
    case 'cloud':
      return true;
  }
}

describe('sync under random policies (property)', () => {
  it('[each holds exactly what the policies allow] over random sites, reaches, holders, ingest and exchange orders', async () => {
    await fc.assert(
      fc.asyncProperty(worldArb, fc.array(stepArb, { minLength: 4, maxLength: 16 }), async (w, steps) => {
        const set = parsePolicyText(policyFile(w), 'random.yaml');
        const closers: (() => Promise<void>)[] = [];
        try {
          const rs = seeds.map((seed, i) => {
            const { dir, cleanup } = tempDir('outpost-policy-prop-');
            const store = Store.open(dir);
            store.devices.putSync(devices[i]!.id, {
              id: devices[i]!.id,
              publicKey: devices[i]!.publicKeyHex,
              enrolledAt: 1,
            });
            const log = new BlockLog(store, {
              publicKey: keys[i]!,
              sign: (m) => signEd25519(seed, m),
              knownAuthors: keys,
              withheldParentsOk: true,
            });
            closers.push(async () => {
              await log.durable();
              await store.close();
              cleanup();
            });
            const site = isCloud(w, i) ? undefined : w.sites[i];
            return {
              log,
              filter: new SyncPolicy(new Permissions(set, site ?? ''), { key: toHex(keys[i]!), site }),
              seq: 0,
            };
          });
          const sync = async (a: number, b: number, probe = false) => {
            await Promise.all([rs[a]!.log.durable(), rs[b]!.log.durable()]);
            return exchange(rs[a]!.log, rs[b]!.log, {
              probe,
              aOffers: rs[a]!.filter.offerTo(toHex(keys[b]!)),
              bOffers: rs[b]!.filter.offerTo(toHex(keys[a]!)),
            });
          };
          for (const s of steps) {
            if (s.kind === 'ingest') {
              const r = rs[s.at]!;
              r.log.appendFrames(
                [{ frame: devices[s.at]!.frame(1, r.seq++), rxTime: 1, transport: 'mqtt' }],
                `p${s.policy}@1`,
              );
            } else if (s.a !== s.b) await sync(s.a, s.b);
          }
          for (let round = 0; round < 2; round++)
            for (let a = 0; a < N; a++) for (let b = a + 1; b < N; b++) await sync(a, b);

          // Every block anyone authored, and who may hold it.
          const all = new Map<string, { author: number; policy: number }>();
          for (const r of rs) {
            for (const { key, envelope } of r.log.rawBlocks()) {
              const d = decodeSignedBlock(envelope);
              if (!d.ok) throw new Error('malformed block');
              all.set(key, {
                author: keys.findIndex((k) => toHex(k) === toHex(d.value.block.author)),
                policy: Number(policyStream(d.value.block.policy).slice(1)),
              });
            }
          }
          for (let i = 0; i < N; i++) {
            const held = [...rs[i]!.log.rawBlocks()].map((b) => b.key).sort();
            const allowed = [...all]
              .filter(([, b]) => oracle(w, i, b.author, b.policy))
              .map(([h]) => h)
              .sort();
            expect({ gateway: i, held }).toEqual({ gateway: i, blocks: undefined, held: allowed });
          }
          for (let a = 0; a < N; a++)
            for (let b = a + 1; b < N; b++) expect((await sync(a, b, true)).initiator.equal).toBe(true);
        } finally {
          for (const c of closers) await c();
        }
      }),
      { numRuns: 20 },
    );
  }, 240_000);
});
