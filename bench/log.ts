/**
 * `node --import tsx bench/log.ts [--quick] [--frames N]` (part of `npm run bench`): block log figures.
 * - bytes a frames block adds per frame (envelope minus the verbatim frames), by batch size;
 * - authoring cost (encode + hash + sign + queue) per block;
 * - `audit verify` speed over the whole log (hash, chain, author and every device signature),
 *   next to a raw node:crypto verify loop on one core (the same run) as its baseline.
 * Writes bench/results/log.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { privateKeyObject, publicKeyFromSeed, signEd25519, verifyEd25519 } from '../gateway/crypto/ed25519.js';
import { auditLog } from '../gateway/log/audit.js';
import { BlockLog } from '../gateway/log/block-log.js';
import { Store } from '../gateway/store/store.js';
import type { FrameEntry } from '../protocols/index.js';
import { benchDevice } from './lib/devices.js';
import { tempDir } from '../test/helpers/env.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, frames: { type: 'string' } } });
const quick = values.quick === true;
const total = Number(values.frames ?? (quick ? 2560 : 20_000));
const results: {
  figure: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
  ratio?: number;
}[] = [];

/** Baseline for audit: single-core node:crypto verify of frame-sized messages. */
function rawVerifyPerSecond(seconds: number): number {
  const s = randomBytes(32);
  const pub = publicKeyFromSeed(s);
  const msg = new Uint8Array(120);
  const sig = signEd25519(privateKeyObject(s), msg);
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end)
    for (let i = 0; i < 64; i++, n++) if (!verifyEd25519(pub, msg, sig)) throw new Error('baseline verify failed');
  return n / seconds;
}
const rawVerify = rawVerifyPerSecond(quick ? 0.5 : 2);
const devices = Array.from({ length: 50 }, (_, i) => benchDevice(`bench-${i}`));
const seed = randomBytes(32);

const rows: string[][] = [
  [
    'batch',
    'blocks',
    'frame bytes',
    'block bytes',
    'overhead/frame',
    'overhead %',
    'author µs/block',
    'audit frames/s',
  ],
];
for (const batch of [1, 16, 256]) {
  const { dir, cleanup } = tempDir('outpost-bench-log-');
  const store = Store.open(dir);
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
  const n = batch === 1 ? Math.min(total, quick ? 500 : 5000) : total;
  const frames: FrameEntry[] = Array.from({ length: n }, (_, i) => ({
    frame: devices[i % devices.length]!.frame(1, Math.floor(i / devices.length)),
    rxTime: 1_760_000_000_000 + i,
    transport: 'mqtt',
  }));
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
  const auditRate = (s.frames / s.ms) * 1000;
  results.push(
    {
      figure: `log block overhead per frame (batch ${batch})`,
      value: Number(((blockBytes - frameBytes) / n).toFixed(1)),
      unit: 'B',
      baseline: 'frame bytes',
      baselineValue: Math.round(frameBytes / n),
      ratio: Number(((blockBytes - frameBytes) / frameBytes).toFixed(4)),
    },
    {
      figure: `log authoring (encode, hash, sign, queue) per block (batch ${batch})`,
      value: Math.round(authorUs),
      unit: 'us',
    },
  );
  if (batch === 256)
    results.push({
      figure: `audit verify, whole log (${n} frames)`,
      value: Math.round(auditRate),
      unit: 'frames/s',
      baseline: 'raw verify, 1 core',
      baselineValue: Math.round(rawVerify),
      ratio: Number((auditRate / rawVerify).toFixed(3)),
    });
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
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/log.json', import.meta.url),
  JSON.stringify({ at: new Date().toISOString(), quick, frames: total, rows: results }, null, 2) + '\n',
);
