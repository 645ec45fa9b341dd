/**
 * The merged store for bench/store-merged.ts: one gateway's data directory holding N frames
 * heard by three gateways, its own blocks and two siblings' synced blocks, as after sync.
 *
 * 999 devices, a third per gateway, each sending every 10 s (N = 1 000 000: 1 001 frames per
 * device, 2.8 h of history), their frames signed by the device (node:crypto Ed25519). Each
 * gateway authors frames blocks of `blockFrames` frames in time order (its ingest batches);
 * the siblings' blocks are authored in throwaway stores and handed to this gateway's
 * `BlockLog.apply` as sync hands them over (author signature, chain and every device
 * signature verified), interleaved with its own in time. Also writes `empty/`: the same
 * gateway with its devices enrolled and no frames (the restart baseline), and `meta.json`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import type { DeviceRecord } from '../../gateway/store/store.js';
import { Store } from '../../gateway/store/store.js';
import { type FrameEntry, fromHex } from '../../protocols/index.js';
import type { TestDevice } from '../../test/helpers/devices.js';
import { memoryLogger } from '../../test/helpers/env.js';
import { benchDevice } from './devices.js';
import { benchDeviceId } from './rules-workload.js';

export const MERGED_DEVICES = 999;
const AUTHORS = ['gw-a', 'gw-b', 'gw-c'] as const;
/** Each device sends every PERIOD_MS. */
const PERIOD_MS = 10_000;

export interface MergedMeta {
  frames: number;
  blockFrames: number;
  /** Envelope bytes of every block held (frames, enrolments): the log's own size. */
  blockBytes: number;
  /** Of it, the COSE_Sign1 frame bytes alone. */
  frameBytes: number;
  blocks: number;
  first: number;
  last: number;
  /** Identity seeds (hex) by gateway id; devices by owning gateway. */
  seeds: Record<string, string>;
  devices: { id: string; seed: string; author: string }[];
  seconds: number;
  at: string;
  /** The gateway ran once on it until its rollups were caught up (catchUp). */
  caughtUp?: boolean;
}

const deviceId = (i: number): string => benchDeviceId(i, MERGED_DEVICES);

/** Writes an identity key (so the gateway ids' keys are known before start) and opens it. */
function identity(dir: string, id: string, seed: string): GatewayIdentity {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'identity.key'), seed + '\n', { mode: 0o600 });
  return GatewayIdentity.loadOrCreate(id, dir);
}

async function enrol(store: Store, devs: readonly TestDevice[], now: number): Promise<void> {
  for (const d of devs) await store.devices.put(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: now });
}

export async function buildMerged(dir: string, N: number, blockFrames: number): Promise<MergedMeta> {
  const t0 = performance.now();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const seeds = Object.fromEntries(AUTHORS.map((a) => [a, randomBytes(32).toString('hex')]));
  const devices = Array.from({ length: MERGED_DEVICES }, (_, i) => benchDevice(deviceId(i), randomBytes(32)));
  const owner = (i: number): string => AUTHORS[i % AUTHORS.length]!;
  const now = Date.now();
  const perDevice = Math.ceil(N / MERGED_DEVICES);
  const first = now - perDevice * PERIOD_MS;

  // This gateway (gw-a): its devices enrolled in its registry, as its config lists them.
  const own = identity(join(dir, 'data'), 'gw-a', seeds['gw-a']!);
  const store = Store.open(join(dir, 'data'));
  await enrol(
    store,
    devices.filter((_, i) => owner(i) === 'gw-a'),
    first - 1000,
  );
  const sibs = AUTHORS.slice(1).map((a) => {
    const id = identity(join(dir, `tmp-${a}`), a, seeds[a]!);
    const recs = new Map<string, DeviceRecord>(
      devices
        .filter((_, i) => owner(i) === a)
        .map((d) => [d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: first - 1000 }]),
    );
    const s = Store.open(join(dir, `tmp-${a}`));
    return {
      author: a,
      store: s,
      log: new BlockLog(s, { publicKey: id.publicKey, sign: id.sign, deviceRecord: (d) => recs.get(d) }),
    };
  });
  const log = new BlockLog(store, {
    publicKey: own.publicKey,
    sign: own.sign,
    knownAuthors: sibs.map((s) => fromHex(s.log.author)!),
  });
  const pending = new Map<string, FrameEntry[]>(AUTHORS.map((a) => [a, []]));
  let frames = 0;
  let blockBytes = 0;
  let frameBytes = 0;
  let blocks = 0;
  const flush = (a: string): void => {
    const batch = pending.get(a)!;
    if (batch.length === 0) return;
    pending.set(a, []);
    for (const f of batch) frameBytes += f.frame.length;
    const sib = sibs.find((s) => s.author === a);
    const out = sib ? sib.log.appendFrames(batch) : log.appendFrames(batch);
    for (const sb of out) {
      blockBytes += sb.envelope.length;
      blocks++;
      if (!sib) continue;
      const r = log.apply(sb.envelope);
      if (r.status !== 'applied') throw new Error(`build: sibling block ${r.status}: ${JSON.stringify(r)}`);
    }
  };
  for (let k = 0; k < perDevice && frames < N; k++) {
    for (let i = 0; i < MERGED_DEVICES && frames < N; i++) {
      const a = owner(i);
      const batch = pending.get(a)!;
      batch.push({
        frame: devices[i]!.frame(1, k, 20 + (k % 50)),
        rxTime: first + k * PERIOD_MS + Math.floor((i * PERIOD_MS) / MERGED_DEVICES),
        transport: 'mqtt',
      });
      frames++;
      if (batch.length >= blockFrames) flush(a);
    }
    if (k % 20 === 19) {
      await Promise.all([log.settled(), ...sibs.map((s) => s.log.settled())]);
      if (k % 200 === 199) console.log(`  built ${frames} of ${N} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  for (const a of AUTHORS) flush(a);
  await Promise.all([log.settled(), ...sibs.map((s) => s.log.settled())]);
  if (log.frames.count() !== frames) throw new Error(`build: view holds ${log.frames.count()} of ${frames} frames`);
  await store.close();
  for (const s of sibs) {
    await s.store.close();
    rmSync(join(dir, `tmp-${s.author}`), { recursive: true, force: true });
  }
  // The restart baseline: the same gateway and devices, no frames.
  identity(join(dir, 'empty'), 'gw-a', seeds['gw-a']!);
  const empty = Store.open(join(dir, 'empty'));
  await enrol(
    empty,
    devices.filter((_, i) => owner(i) === 'gw-a'),
    first - 1000,
  );
  await empty.close();
  const meta: MergedMeta = {
    frames,
    blockFrames,
    blockBytes,
    frameBytes,
    blocks,
    first,
    last: first + (perDevice - 1) * PERIOD_MS + PERIOD_MS,
    seeds,
    devices: devices.map((d, i) => ({ id: d.id, seed: Buffer.from(d.seed).toString('hex'), author: owner(i) })),
    seconds: (performance.now() - t0) / 1000,
    at: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  return meta;
}

/**
 * Runs the gateway once on the built store until its local rollups have read every frame, as
 * a gateway that has been running has (its first start would otherwise do that catch-up).
 */
export async function catchUp(dir: string, meta: MergedMeta): Promise<void> {
  const t0 = performance.now();
  const config = validateConfig({
    gateway: { id: 'gw-a', dataDir: join(dir, 'data') },
    mqtt: { enabled: false },
    api: { enabled: false },
    simulate: { devices: 0 },
    ingest: { minFreeBytes: 0 },
    devices: meta.devices
      .filter((d) => d.author === 'gw-a')
      .map((d) => ({ id: d.id, publicKey: benchDevice(d.id, Buffer.from(d.seed, 'hex')).publicKeyHex })),
  });
  const gw = await Gateway.start(config, { logger: memoryLogger().log, simulate: false });
  try {
    for (;;) {
      const r = gw.exports?.status().rollups;
      if (!r || r.state === 'caught-up') break;
      await new Promise((res) => setTimeout(res, 500));
    }
  } finally {
    await gw.stop();
  }
  meta.caughtUp = true;
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  console.log(`  rollups caught up in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
