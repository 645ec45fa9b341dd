/**
 * Sync under the free-space guard (gateway/store/free-space.ts, ingest.minFreeBytes): while
 * the data directory is below the floor a session applies none of a sibling's blocks (nothing
 * is written, so lmdb never meets ENOSPC), and stays that way for the rest of the exchange even
 * if space returns mid-way (no block may land above a skipped parent). The next exchange
 * brings them all: equal heads, no audit fault. Real lmdb block logs; statfs is the one
 * thing replaced (the guard's `freeBytes`), as filling a real disk is free-space-guard.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { FreeSpaceGuard } from '../../gateway/store/free-space.js';
import { Store } from '../../gateway/store/store.js';
import { SyncSession } from '../../gateway/sync/engine.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir } from '../helpers/env.js';

const dev = testDevice('dev-low');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function replicas(): [BlockLog, BlockLog] {
  const seeds = [randomBytes(32), randomBytes(32)];
  const keys = seeds.map(publicKeyFromSeed);
  return seeds.map((seed, i) => {
    const { dir, cleanup } = tempDir('outpost-lowdisk-');
    const store = Store.open(dir);
    store.devices.putSync(dev.id, { id: dev.id, publicKey: dev.publicKeyHex, enrolledAt: 1 });
    closers.push(async () => {
      await store.close();
      cleanup();
    });
    return new BlockLog(store, { publicKey: keys[i]!, sign: (m) => signEd25519(seed, m), knownAuthors: keys });
  }) as [BlockLog, BlockLog];
}

/** One exchange a → b, message by message; `onMessage` runs after each message b receives. */
async function exchange(
  a: BlockLog,
  b: BlockLog,
  guard: FreeSpaceGuard,
  onMessage = (_n: number) => {},
): Promise<SyncSession> {
  const sa = new SyncSession(a);
  const sb = new SyncSession(b, guard);
  let flight = sa.open();
  let toB = true;
  let n = 0;
  while (flight.length > 0) {
    const next: Uint8Array[] = [];
    for (const m of flight) {
      next.push(...(toB ? sb : sa).receive(m));
      if (toB) onMessage(++n);
    }
    flight = next;
    toB = !toB;
  }
  await b.durable();
  return sb;
}

describe('sync with the free-space guard', () => {
  it('applies nothing below the floor (sticky for the exchange), then everything on the next exchange', async () => {
    const [a, b] = replicas();
    for (let k = 0; k < 10; k++)
      a.appendFrames(
        Array.from({ length: 5 }, (_, i) => ({
          frame: dev.frame(1, k * 5 + i),
          rxTime: 1_760_000_000_000 + k,
          transport: 'mqtt',
        })),
      );
    await a.durable();
    let free = 1_000;
    const guard = new FreeSpaceGuard('/unused', { minFreeBytes: 4_096, intervalMs: 0, freeBytes: () => free });
    // Space returns after b's 3rd message (blocks are still arriving): the session keeps deferring.
    const first = await exchange(a, b, guard, (n) => {
      if (n === 3) free = 1 << 30;
    });
    expect(first.stats.applied).toBe(0);
    expect(first.stats.deferred).toBeGreaterThanOrEqual(10); // every block (and any mark) a sent
    expect(b.streamHeads().some((h) => h.author === a.author)).toBe(false);
    expect(guard.refusals).toBeGreaterThan(0);
    const second = await exchange(a, b, guard);
    expect(second.stats.deferred).toBe(0);
    expect(second.stats.applied).toBeGreaterThanOrEqual(10);
    expect(second.stats.applied + second.stats.marks).toBe(first.stats.deferred);
    expect(b.headsDigest()).toBe(a.headsDigest());
    const audit = auditLog(b);
    expect(audit.faultsByCode).toEqual({});
    expect(audit.uniqueFrames).toBe(50);
  });
});

describe('restore before authoring on a low disk', () => {
  // Recovery: a gateway with none of its own blocks restores them from siblings
  // before it writes; on a disk below the floor it could restore nothing (siblings' blocks are
  // deferred), so it refuses to start rather than author a fork of its own chains.
  it('an empty store below ingest.minFreeBytes refuses to start, naming the reason; with room it starts', async () => {
    const peer = {
      id: 'gw-b',
      publicKey: Buffer.from(publicKeyFromSeed(randomBytes(32))).toString('hex'),
      url: 'tcp://127.0.0.1:9',
    };
    const sync = { enabled: true, host: '127.0.0.1', port: 0, peers: [peer] };
    const { dir, cleanup } = tempDir('outpost-restore-low-');
    closers.push(async () => cleanup());
    // The gateway's identity key came back from its backup; its store did not.
    GatewayIdentity.loadOrCreate('gw-test', dir);
    // A floor of 1 TiB: this box is below it.
    await expect(startTestGateway(dir, [], { sync, ingest: { minFreeBytes: 2 ** 40 } })).rejects.toThrow(
      expect.objectContaining({
        name: 'RestoreError',
        message: expect.stringMatching(/none of its own blocks.*below ingest\.minFreeBytes.*fork/),
      }),
    );
    const { gw } = await startTestGateway(dir, [], { sync, ingest: { minFreeBytes: 1 } });
    await gw.stop();
  });
});
