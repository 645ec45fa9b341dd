/**
 * `node --import tsx bench/log.ts [--frames N]`: block log figures.
 * - bytes a frames block adds per frame (envelope minus the verbatim frames), by batch size;
 * - authoring cost (encode + hash + sign + queue) per block;
 * - `audit verify` speed over the whole log (hash, chain, author and every device signature).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';
import { auditLog } from '../gateway/log/audit.js';
import { BlockLog } from '../gateway/log/block-log.js';
import { Store } from '../gateway/store/store.js';
import type { FrameEntry } from '../protocols/index.js';
import { testDevice } from '../test/helpers/devices.js';
import { tempDir } from '../test/helpers/env.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '20000' } } });
const total = Number(values.frames);
const devices = Array.from({ length: 50 }, (_, i) => testDevice(`bench-${i}`));
const seed = randomBytes(32);

const rows: string[][] = [['batch', 'blocks', 'frame bytes', 'block bytes', 'overhead/frame', 'overhead %', 'author µs/block', 'audit frames/s']];
for (const batch of [1, 16, 256]) {
  const { dir, cleanup } = tempDir('outpost-bench-log-');
  const store = Store.open(dir);
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
  const n = batch === 1 ? Math.min(total, 5000) : total;
  const frames: FrameEntry[] = Array.from({ length: n }, (_, i) => ({ frame: devices[i % devices.length]!.frame(1, Math.floor(i / devices.length)), rxTime: 1_760_000_000_000 + i, transport: 'mqtt' }));
  let frameBytes = 0;
  let blockBytes = 0;
  let blocks = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) {
    const chunk = frames.slice(i, i + batch);
    for (const sb of log.appendFrames(chunk)) {
      blockBytes += sb.envelope.length;
      blocks++;
    }
    for (const f of chunk) frameBytes += f.frame.length;
    if (blocks % 64 === 0) await store.durable();
  }
  await store.durable();
  const authorUs = ((performance.now() - t0) * 1000) / blocks;
  const s = auditLog(log);
  if (s.faults.length > 0) throw new Error(`audit found ${s.faults.length} faults`);
  rows.push([
    String(batch),
    String(blocks),
    String(frameBytes),
    String(blockBytes),
    ((blockBytes - frameBytes) / n).toFixed(1),
    ((100 * (blockBytes - frameBytes)) / frameBytes).toFixed(1),
    authorUs.toFixed(0),
    Math.round((s.frames / s.ms) * 1000).toString(),
  ]);
  await store.close();
  cleanup();
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((x, c) => x.padStart(widths[c]!)).join('  '));
