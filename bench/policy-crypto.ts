/**
 * `node --import tsx bench/policy-crypto.ts [--quick] [--frames N]`: what
 * confidential policies cost.
 *
 * Sync throughput through the real sync engine in-process (real lmdb on both sides),
 * the same frames (~130-byte device frames, 64 per block) authored once under a plain
 * policy and once under a confidential one: blocks/s and MB/s of block envelopes to
 *  - a reader of the plain policy (baseline): verifies every device signature;
 *  - a reader of the confidential policy: decrypts every block, then verifies every
 *    device signature;
 *  - a relay of the confidential policy (holds, cannot read): author signature and
 *    chain only.
 * Per block (1 and 64 frames): seal (AES-256-GCM, XChaCha20-Poly1305) and open, against
 * the work the block needs anyway in the same run (signing it; verifying its device
 * signatures); and a key wrap / unwrap per reader. Writes bench/results/policy-crypto.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';
import { BlockLog } from '../gateway/log/block-log.js';
import { verifyFrames } from '../gateway/log/verify.js';
import { KeyRing } from '../gateway/policy/keyring.js';
import {
  newDataKey,
  openBlock,
  sealBlock,
  unwrapDataKey,
  wrapDataKey,
  x25519FromEd25519Seed,
} from '../gateway/policy/seal.js';
import { Store } from '../gateway/store/store.js';
import { exchange } from '../gateway/sync/engine.js';
import {
  type Block,
  type CborValue,
  type FrameEntry,
  keysBodyValue,
  type SealAlg,
  signBlock,
} from '../protocols/index.js';
import { tempDir } from '../test/helpers/env.js';
import { benchDevice } from './lib/devices.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, frames: { type: 'string' } } });
const quick = values.quick === true;
const N = Number(values.frames ?? (quick ? 1280 : 25_600));
/** Sync rounds; each round syncs plain, confidential-to-reader and confidential-to-relay in turn, and the medians are reported (the box is shared). */
const ROUNDS = quick ? 3 : 5;
const PER_BLOCK = 64;
const devices = Array.from({ length: 100 }, (_, i) => benchDevice(`bench-${i}`));

const round = (x: number): number => Number(x.toPrecision(4));

const seeds = { author: randomBytes(32), reader: randomBytes(32), relay: randomBytes(32), plain: randomBytes(32) };
const pub = (s: Uint8Array): Uint8Array => publicKeyFromSeed(s);
const authors = [pub(seeds.author), pub(seeds.plain)];

function replica(seed: Uint8Array, readers?: Uint8Array[]) {
  const { dir, cleanup } = tempDir('outpost-bench-pc-');
  const store = Store.open(dir);
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const ring = new KeyRing({
    me: { publicKey: pub(seed), x25519Secret: x25519FromEd25519Seed(seed) },
    readersOf: (p) => (p === 'doors' ? readers : undefined),
  });
  const log = new BlockLog(store, {
    publicKey: pub(seed),
    sign: (m) => signEd25519(seed, m),
    knownAuthors: authors,
    crypto: ring,
  });
  return { log, close: async () => (await store.close(), cleanup()) };
}

/** Authors the same frames into both logs, block by block in turn; CPU ms of authoring (sign, seal, queue) each. */
async function authorBoth(plain: BlockLog, enc: BlockLog, frames: FrameEntry[]): Promise<[number, number]> {
  const ms: [number, number] = [0, 0];
  const logs: [BlockLog, string][] = [
    [plain, 'plain'],
    [enc, 'doors'],
  ];
  for (let i = 0; i < frames.length; i += PER_BLOCK) {
    for (let k = 0; k < 2; k++) {
      const [log, policy] = logs[k]!;
      const t0 = cpuMs();
      log.appendFrames(frames.slice(i, i + PER_BLOCK), policy);
      ms[k] = ms[k]! + cpuMs() - t0;
      if ((i / PER_BLOCK) % 32 === 31) await log.durable();
    }
  }
  for (let k = 0; k < 2; k++) await logs[k]![0].durable();
  return ms;
}

interface Synced {
  blocks: number;
  bytes: number;
  /** Wall time, and CPU time of this process (all threads: the sync runs in-process, lmdb writes on its own thread). */
  ms: number;
  cpuMs: number;
  frames: number;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function syncTo(from: BlockLog, seed: Uint8Array): Promise<Synced> {
  const to = replica(seed);
  const c0 = cpuMs();
  const t0 = performance.now();
  const x = await exchange(from, to.log);
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  if (to.log.headsDigest() !== from.headsDigest()) throw new Error('not converged');
  let frames = 0;
  for (const _ of to.log.frameView()) frames++;
  await to.close();
  return { blocks: x.responder.applied, bytes: x.initiator.blockBytesSent, ms, cpuMs: cpu, frames };
}

/** Median µs per call of `fn` over `n` runs. */
function perCall(n: number, fn: () => void): number {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push((performance.now() - t0) * 1000);
  }
  return t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
}

async function main(): Promise<void> {
  console.log(`outpost policy-crypto bench (${quick ? 'quick' : 'full'}): ${N} frames, ${PER_BLOCK} per block`);
  const frames: FrameEntry[] = Array.from({ length: N }, (_, j) => ({
    frame: devices[j % 100]!.frame(1, Math.floor(j / 100)),
    rxTime: 1_760_000_000_000 + j,
    transport: 'mqtt',
  }));
  const rows: Row[] = [];

  // Authoring: the same frames under a plain and a confidential policy.
  const plain = replica(seeds.plain);
  const enc = replica(seeds.author, [pub(seeds.reader)]);
  const [plainMs, encMs] = await authorBoth(plain.log, enc.log, frames);
  const blocks = Math.ceil(N / PER_BLOCK);
  rows.push({
    figure: `authoring CPU per ${PER_BLOCK}-frame block, confidential (sealed, AES-256-GCM)`,
    value: round((encMs * 1000) / blocks),
    unit: 'us',
    baseline: 'plain policy',
    baselineValue: round((plainMs * 1000) / blocks),
    ratio: round(encMs / plainMs),
  });

  const runs: { p: Synced[]; r: Synced[]; h: Synced[] } = { p: [], r: [], h: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // Plain and confidential take turns going first, so neither always inherits the other's garbage.
    const plainFirst = round % 2 === 0;
    if (plainFirst) runs.p.push(await syncTo(plain.log, seeds.reader));
    runs.r.push(await syncTo(enc.log, seeds.reader));
    if (!plainFirst) runs.p.push(await syncTo(plain.log, seeds.reader));
    runs.h.push(await syncTo(enc.log, seeds.relay));
  }
  // Medians by CPU time: on a shared box wall time mostly measures the neighbours.
  const median = (xs: Synced[]): Synced => [...xs].sort((a, b) => a.cpuMs - b.cpuMs)[Math.floor(xs.length / 2)]!;
  const [p, r, h] = [median(runs.p), median(runs.r), median(runs.h)];
  if (p.frames !== N || r.frames !== N || h.frames !== 0)
    throw new Error(`frames view: plain ${p.frames}, reader ${r.frames}, relay ${h.frames} (expected ${N}, ${N}, 0)`);
  const bps = (x: Synced): number => (x.blocks / x.cpuMs) * 1000;
  const mbps = (x: Synced): number => x.bytes / 1e6 / (x.cpuMs / 1000);
  const wall = (x: Synced): number => (x.blocks / x.ms) * 1000;
  const at = `${N} frames, ${PER_BLOCK}/block, per CPU second`;
  rows.push({ figure: `sync to a reader, plain policy (${at})`, value: round(bps(p)), unit: 'blocks/s' });
  rows.push({ figure: `sync to a reader, plain policy, envelope bytes (${at})`, value: round(mbps(p)), unit: 'MB/s' });
  rows.push({
    figure: `sync to a reader, confidential: decrypt + verify (${at})`,
    value: round(bps(r)),
    unit: 'blocks/s',
    baseline: 'plain policy',
    baselineValue: round(bps(p)),
    ratio: round(bps(r) / bps(p)),
    goal: '>= 0.9x',
    pass: bps(r) / bps(p) >= 0.9,
  });
  rows.push({
    figure: `sync to a reader, confidential, envelope bytes (${at})`,
    value: round(mbps(r)),
    unit: 'MB/s',
    baseline: 'plain policy',
    baselineValue: round(mbps(p)),
    ratio: round(mbps(r) / mbps(p)),
  });
  rows.push({
    figure: `sync to a relay, confidential: chain only (${at})`,
    value: round(bps(h)),
    unit: 'blocks/s',
    baseline: 'plain policy',
    baselineValue: round(bps(p)),
    ratio: round(bps(h) / bps(p)),
  });
  rows.push({
    figure: `sync to a reader, confidential, wall clock (${N} frames)`,
    value: round(wall(r)),
    unit: 'blocks/s',
    baseline: 'plain policy',
    baselineValue: round(wall(p)),
    ratio: round(wall(r) / wall(p)),
  });
  rows.push({
    figure: `block bytes on the wire, confidential vs plain (${N} frames, ${PER_BLOCK}/block)`,
    value: r.bytes,
    unit: 'B',
    baseline: 'plain policy',
    baselineValue: p.bytes,
    ratio: round(r.bytes / p.bytes),
  });
  await plain.close();
  await enc.close();

  // Per block: seal / open against signing and device-signature verification of the same block.
  const deviceKeys = new Map(devices.map((d) => [d.id, [pub(d.seed)]]));
  const ctx = {
    isKnownAuthor: () => true,
    deviceKeys: (d: string) => deviceKeys.get(d) ?? [],
    lookup: () => undefined,
  };
  for (const size of [1, PER_BLOCK]) {
    const block: Block = {
      author: pub(seeds.author),
      stream: 'doors',
      seq: 1,
      lamport: 2,
      prev: new Uint8Array(32),
      parents: [],
      policy: 'doors',
      kind: 'frames',
      body: frames.slice(0, size),
    };
    const dk = newDataKey(0);
    const sign = perCall(200, () => signBlock(block, (m) => signEd25519(seeds.author, m)));
    const sb = signBlock(block, (m) => signEd25519(seeds.author, m));
    const verify = perCall(quick ? 30 : 100, () => verifyFrames(sb, ctx));
    for (const alg of ['aes-256-gcm', 'xchacha20-poly1305'] as SealAlg[]) {
      const sealed = sealBlock(block, dk, alg);
      const seal = perCall(300, () => sealBlock(block, dk, alg));
      const open = perCall(300, () => openBlock(sealed, dk.key));
      rows.push({
        figure: `seal per ${size}-frame block, ${alg}`,
        value: round(seal),
        unit: 'us',
        baseline: 'signing the block',
        baselineValue: round(sign),
        ratio: round(seal / sign),
      });
      rows.push({
        figure: `open per ${size}-frame block, ${alg}`,
        value: round(open),
        unit: 'us',
        baseline: 'verifying its device signatures',
        baselineValue: round(verify),
        ratio: round(open / verify),
      });
    }
  }
  // Key wraps: one per reader per epoch (a revocation re-wraps for every remaining reader).
  const readers = Array.from({ length: 16 }, () => randomBytes(32));
  const dk = newDataKey(0);
  const readerKeys = readers.map(pub);
  const authorKey = pub(seeds.author);
  wrapDataKey(authorKey, 'doors', dk, readerKeys); // first use converts and parses each reader's key once
  const wrap = perCall(20, () => wrapDataKey(authorKey, 'doors', dk, readerKeys)) / readers.length;
  const body = wrapDataKey(authorKey, 'doors', dk, readerKeys);
  const kb: Block = {
    author: pub(seeds.author),
    stream: 'doors',
    seq: 0,
    lamport: 1,
    prev: null,
    parents: [],
    policy: 'doors',
    kind: 'keys',
    body: keysBodyValue(body) as CborValue,
  };
  const me = { publicKey: pub(readers[7]!), x25519Secret: x25519FromEd25519Seed(readers[7]!) };
  const unwrap = perCall(100, () => unwrapDataKey(kb, me));
  rows.push({
    figure: 'key wrap per reader (X25519 + HKDF + XChaCha20-Poly1305, 16 readers)',
    value: round(wrap),
    unit: 'us',
  });
  rows.push({ figure: 'key unwrap (once per author, policy and epoch)', value: round(unwrap), unit: 'us' });

  for (const row of rows)
    console.log(
      `${row.figure.padEnd(82)} ${String(row.value).padStart(10)} ${row.unit}${row.baseline ? `   vs ${row.baseline} ${row.baselineValue} → ${row.ratio}x` : ''}${row.goal ? `   goal ${row.goal}: ${row.pass ? 'pass' : 'FAIL'}` : ''}`,
    );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/policy-crypto.json', import.meta.url),
    JSON.stringify(
      { at: new Date().toISOString(), quick, frames: N, perBlock: PER_BLOCK, rounds: ROUNDS, loadavg: loadavg(), rows },
      null,
      2,
    ) + '\n',
  );
  console.log(
    `load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} (the figures are for a shared box)`,
  );
}

await main();
