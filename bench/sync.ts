/**
 * `node --import tsx bench/sync.ts [--frames N]`: the sync engine on the workload,
 * two replicas with N frames in common and d = 1 000 and 10 000 divergent frames on each
 * side (256 frames per block, as a busy ingest batch). Prints, from the same run: our sync
 * bytes ÷ bytes of the missing blocks (goal ≤ 1.05), message flights (a round trip is two),
 * wall time, and the bytes of an "are we equal?" check. Yjs / Automerge baselines: not yet.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';
import { BlockLog } from '../gateway/log/block-log.js';
import { Store } from '../gateway/store/store.js';
import { exchange } from '../gateway/sync/engine.js';
import type { FrameEntry } from '../protocols/index.js';
import { testDevice } from '../test/helpers/devices.js';
import { tempDir } from '../test/helpers/env.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '100000' } } });
const n = Number(values.frames);
const devices = Array.from({ length: 100 }, (_, i) => testDevice(`bench-${i}`));
const PER_BLOCK = 256;

function replica(seeds: Uint8Array[], i: number) {
  const { dir, cleanup } = tempDir('outpost-bench-sync-');
  const store = Store.open(dir);
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seeds[i]!), sign: (m) => signEd25519(seeds[i]!, m), knownAuthors: seeds.map(publicKeyFromSeed) });
  return { log, close: async () => (await store.close(), cleanup()) };
}

async function ingest(log: BlockLog, boot: number, count: number): Promise<void> {
  for (let i = 0; i < count; i += PER_BLOCK) {
    const entries: FrameEntry[] = [];
    for (let j = i; j < Math.min(count, i + PER_BLOCK); j++) entries.push({ frame: devices[j % devices.length]!.frame(boot, Math.floor(j / devices.length)), rxTime: 1_760_000_000_000 + j, transport: 'mqtt' });
    log.appendFrames(entries);
    if ((i / PER_BLOCK) % 32 === 0) await log.durable();
  }
  await log.durable();
}

const rows: string[][] = [['n common', 'd each side', 'missing block bytes', 'sync bytes', 'ratio', 'flights', 'wall ms', 'equal-check bytes']];
for (const d of [1000, 10_000]) {
  const seeds = [randomBytes(32), randomBytes(32)];
  const a = replica(seeds, 0);
  const b = replica(seeds, 1);
  await ingest(a.log, 1, n);
  await exchange(a.log, b.log); // the common history
  await ingest(a.log, 2, d);
  await ingest(b.log, 3, d);
  const t0 = performance.now();
  const x = await exchange(a.log, b.log);
  const wall = performance.now() - t0;
  const blockBytes = x.initiator.blockBytesSent + x.responder.blockBytesSent;
  const syncBytes = x.initiator.bytesSent + x.responder.bytesSent;
  if (a.log.headsDigest() !== b.log.headsDigest()) throw new Error('not converged');
  const eq = await exchange(a.log, b.log, { probe: true });
  rows.push([String(n), String(d), String(blockBytes), String(syncBytes), (syncBytes / blockBytes).toFixed(4), String(x.flights), wall.toFixed(0), String(eq.initiator.bytesSent + eq.responder.bytesSent)]);
  await a.close();
  await b.close();
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((x, c) => x.padStart(widths[c]!)).join('  '));
console.log(`rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
