/**
 * Child of sync-disk-full.test.ts (its own process, as lmdb-js leaves one orphaned rejected
 * promise per failed commit, which the gateway ignores the same way): gateway B, on a small
 * tmpfs at argv[2], receives gateway A's chain one message per event-loop turn (as over a
 * socket), so its blocks land in many transactions; the disk fills mid-exchange and space
 * returns mid-exchange. Prints JSON: what each exchange applied and B's log reopened from disk.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { isStoreCommitFailure, Store } from '../../gateway/store/store.js';
import { SyncSession } from '../../gateway/sync/engine.js';
import { testDevice } from '../helpers/devices.js';

let commitFailures = 0;
process.on('unhandledRejection', (reason) => {
  if (!isStoreCommitFailure(reason)) throw reason;
  commitFailures++;
});

const bDir = process.argv[2]!;
const dev = testDevice('dev-full');
const seeds = [randomBytes(32), randomBytes(32)];
const keys = seeds.map((s) => publicKeyFromSeed(s));
const open = (dir: string, i: number) => {
  const store = Store.open(dir);
  store.devices.putSync(dev.id, { id: dev.id, publicKey: dev.publicKeyHex, enrolledAt: 1 });
  return {
    store,
    log: new BlockLog(store, { publicKey: keys[i]!, sign: (m) => signEd25519(seeds[i]!, m), knownAuthors: keys }),
  };
};
const aDir = mkdtempSync(join(tmpdir(), 'outpost-full-a-'));
const a = open(aDir, 0);
const b = open(bDir, 1);
const BLOCKS = 60;
for (let k = 0; k < BLOCKS; k++)
  a.log.appendFrames(
    Array.from({ length: 100 }, (_, i) => ({
      frame: dev.frame(1, k * 100 + i),
      rxTime: Date.now(),
      transport: 'mqtt',
    })),
  );
await a.log.durable();

let received = 0;
async function exchange(growAt?: number): Promise<{ applied: number; equal: boolean; durable: boolean }> {
  const sa = new SyncSession(a.log);
  const sb = new SyncSession(b.log);
  let flight = [...sa.open()];
  let toB = true;
  while (flight.length > 0) {
    const next: Uint8Array[] = [];
    for (const m of flight) {
      next.push(...(toB ? sb : sa).receive(m));
      // Space comes back while the exchange is still applying: later commits succeed.
      if (toB && ++received === growAt) execFileSync('mount', ['-o', 'remount,size=64m', bDir]);
      await new Promise((r) => setImmediate(r));
    }
    flight = next;
    toB = !toB;
  }
  const durable = await b.log.durable().then(
    () => true,
    () => false,
  );
  return { applied: sb.stats.applied, equal: sb.stats.equal, durable };
}

// 1 MiB fills after about half the 60 blocks of 100 frames; space returns at message 56.
const first = await exchange(56);
const second = await exchange();
const third = await exchange();
await b.store.close();
const reopened = open(bDir, 1);
const audit = auditLog(reopened.log);
console.log(
  JSON.stringify({
    commitFailures,
    first,
    second,
    third,
    faults: audit.faultsByCode,
    frames: audit.uniqueFrames,
    equal: reopened.log.headsDigest() === a.log.headsDigest(),
    expected: BLOCKS * 100,
  }),
);
await reopened.store.close();
await a.store.close();
rmSync(aDir, { recursive: true, force: true });
