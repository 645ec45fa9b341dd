/**
 * `node --import tsx bench/sync.ts [--quick] [--frames N] [--automerge-frames N]` (part of
 * `npm run bench`): the sibling-sync workload, two replicas with n frames in common and
 * d = 1 000 and 10 000 divergent frames on each side (256 frames per block, as a busy ingest
 * batch), synced by our engine and, as baselines from the same run on the same frame bytes,
 * by Yjs (state vector + update) and Automerge (its sync protocol). For each: bytes on the
 * wire, bytes ÷ the missing frames' bytes, message flights (a round trip is two), wall time,
 * and the bytes of an "are we equal?" check. Ours also: bytes ÷ missing block bytes (goal
 * ≤ 1.05), and the same exchange's bytes with link compression (protocols/link-deflate.ts, as
 * the sync links negotiate it) with the codec's CPU time. `--quick`: n = 5 000, d = 1 000 only.
 * `--d 10000 --ours-only --pool-only [--profile F]`: our exchange on the verify pool alone (no
 * main-thread run, no Yjs / Automerge), optionally with a CPU profile of the main thread.
 * Writes bench/results/sync.json.
 *
 * Our wall time includes verifying every device signature in the received blocks; Yjs and
 * Automerge verify nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../gateway/crypto/ed25519.js';
import { type VerifyJob, VerifyPool } from '../gateway/ingest/verify-pool.js';
import { BlockLog } from '../gateway/log/block-log.js';
import { Store } from '../gateway/store/store.js';
import { exchange, SyncSession } from '../gateway/sync/engine.js';
import type { SignatureVerifier } from '../gateway/sync/intake.js';
import { MAX_SYNC_MESSAGE } from '../gateway/sync/link.js';
import {
  decodeSign1,
  type FrameEntry,
  fromHex,
  MessageDeflater,
  MessageInflater,
  packMessages,
  sigStructure,
  unpackMessages,
} from '../protocols/index.js';
import { benchDevice } from './lib/devices.js';
import { tempDir } from '../test/helpers/env.js';
import {
  automergeSync,
  type BaselineFrames,
  type BaselineResult,
  type DeviceFrame,
  yjsSync,
} from './lib/crdt-baselines.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    frames: { type: 'string' },
    'automerge-frames': { type: 'string' },
    d: { type: 'string' },
    'ours-only': { type: 'boolean' },
    /** Our exchange on the pool only (no main-thread run: half the bench's time). */
    'pool-only': { type: 'boolean' },
    /** Write a CPU profile of the main thread during our exchange (the last d) to this file. */
    profile: { type: 'string' },
  },
});
const quick = values.quick === true;
const n = Number(values.frames ?? (quick ? 5000 : 100_000));
/** Automerge at a smaller n if it does not fit this box (the rows say which n). */
const nAutomerge = Math.min(n, Number(values['automerge-frames'] ?? n));
const divergent = values.d !== undefined ? values.d.split(',').map(Number) : quick ? [1000] : [1000, 10_000];
/** Our exchange only (profiling): no Yjs / Automerge rows. */
const oursOnly = values['ours-only'] === true;
const devices = Array.from({ length: 100 }, (_, i) => benchDevice(`bench-${i}`));
const PER_BLOCK = 256;

/** Frames j = 0… of one boot, round-robin over the devices (seq advances every 100 frames). */
function frames(boot: number, count: number): DeviceFrame[] {
  return Array.from({ length: count }, (_, j) => {
    const d = devices[j % devices.length]!;
    return { device: d.id, bytes: d.frame(boot, Math.floor(j / devices.length)) };
  });
}

function replica(seeds: Uint8Array[], i: number) {
  const { dir, cleanup } = tempDir('outpost-bench-sync-');
  const store = Store.open(dir);
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const log = new BlockLog(store, {
    publicKey: publicKeyFromSeed(seeds[i]!),
    sign: (m) => signEd25519(seeds[i]!, m),
    knownAuthors: seeds.map(publicKeyFromSeed),
  });
  return { log, close: async () => (await store.close(), cleanup()) };
}

async function ingest(log: BlockLog, fs: readonly DeviceFrame[]): Promise<void> {
  for (let i = 0; i < fs.length; i += PER_BLOCK) {
    const entries: FrameEntry[] = fs
      .slice(i, i + PER_BLOCK)
      .map((f, k) => ({ frame: f.bytes, rxTime: 1_760_000_000_000 + i + k, transport: 'mqtt' }));
    log.appendFrames(entries);
    if ((i / PER_BLOCK) % 32 === 0) await log.durable();
  }
  await log.durable();
}

/**
 * One exchange between two sessions as the sync link runs it (gateway/sync/link.ts,
 * `runSession`), the messages through the link codec: each side's answers are sent as soon as
 * they are produced, both directions at once (a side sends its blocks while it still verifies
 * the peer's), not flight by flight as engine.ts `exchange()` (tests) passes them. Per
 * direction the answers are read as the transport takes them (blocks from lmdb lazily) and
 * packed into units of up to 16 KiB, each deflated (one
 * window per direction) and inflated, one unit a turn of the event loop as a transport
 * delivers them; the receiver takes no more while its blocks waiting on the pool are past the
 * bound (`backlog`). Counts the deflated bytes, the units, the codec's time (synchronous zlib:
 * its CPU) and the flights (a message answering one of flight k is of flight k + 1).
 */
async function compressedExchange(a: BlockLog, b: BlockLog, verifier?: SignatureVerifier) {
  const sa = new SyncSession(a, undefined, verifier);
  const sb = new SyncSession(b, undefined, verifier);
  let deflated = 0;
  let units = 0;
  let deflateMs = 0;
  let inflateMs = 0;
  let flights = 0;
  /** A side's answers to one message, read as the transport takes them (blocks come from lmdb lazily). */
  interface Queued {
    readonly it: Iterator<Uint8Array>;
    readonly flight: number;
  }
  // [0]: a → b, [1]: b → a.
  const dirs = [sb, sa].map((to) => ({
    to,
    d: new MessageDeflater(),
    i: new MessageInflater(2 * MAX_SYNC_MESSAGE),
    queue: [] as Queued[],
  }));
  dirs[0]!.queue.push({ it: sa.open()[Symbol.iterator](), flight: 1 });
  const deliver = async (k: 0 | 1): Promise<void> => {
    const dir = dirs[k]!;
    const back = dirs[1 - k]!.queue;
    const unit: Uint8Array[] = [];
    const of: number[] = [];
    let bytes = 0;
    while (dir.queue.length > 0 && bytes < 16 * 1024) {
      const q = dir.queue[0]!;
      const r = q.it.next();
      if (r.done) {
        dir.queue.shift();
        continue;
      }
      unit.push(r.value);
      of.push(q.flight);
      bytes += r.value.length;
    }
    if (unit.length === 0) return;
    const t0 = performance.now();
    const z = dir.d.deflate(packMessages(unit));
    const t1 = performance.now();
    const r = dir.i.inflate(z);
    const got = r.ok ? unpackMessages(r.value) : r;
    deflateMs += t1 - t0;
    inflateMs += performance.now() - t1;
    if (!got.ok) throw new Error(got.error.message);
    deflated += z.length;
    units++;
    for (const [j, m] of got.value.entries()) {
      const flight = of[j]!;
      flights = Math.max(flights, flight);
      back.push({ it: dir.to.receive(m)[Symbol.iterator](), flight: flight + 1 });
      await dir.to.backlog();
    }
  };
  while (dirs[0]!.queue.length > 0 || dirs[1]!.queue.length > 0) {
    if (dirs[0]!.queue.length > 0) await deliver(0);
    if (dirs[1]!.queue.length > 0) await deliver(1);
    // A transport delivers each unit in its own turn: the pool's answers land in between.
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all([sa.settled(), sb.settled()]);
  await Promise.all([a.settled(), b.settled()]);
  const plain = sa.stats.bytesSent + sb.stats.bytesSent;
  const messages = sa.stats.messagesSent + sb.stats.messagesSent;
  const blockBytes = sa.stats.blockBytesSent + sb.stats.blockBytesSent;
  return { plain, blockBytes, deflated, units, messages, deflateMs, inflateMs, flights };
}

interface Ours {
  /** Sync message bytes with and without link compression (the same exchange). */
  deflated: number;
  units: number;
  messages: number;
  deflateMs: number;
  inflateMs: number;
  bytes: number;
  blockBytes: number;
  flights: number;
  wallMs: number;
  /** CPU of the whole process (main thread and pool workers) during the exchange. */
  cpuMs: number;
  equalBytes: number;
}

/** Process CPU (every thread) since `c0`, in ms. */
function cpuMsSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/**
 * Our exchange between two replicas in this process. `verifier`: both replicas' sessions verify
 * on it (one pool for both: the two sides' blocks, flowing at once, share its workers, so its
 * whole work is the 2 d signatures the ideal counts); without it, each block is verified on the
 * main thread.
 */
async function ours(
  common: DeviceFrame[],
  onlyA: DeviceFrame[],
  onlyB: DeviceFrame[],
  verifier: SignatureVerifier | undefined,
  profile: boolean,
): Promise<Ours> {
  const seeds = [randomBytes(32), randomBytes(32)];
  const a = replica(seeds, 0);
  const b = replica(seeds, 1);
  await ingest(a.log, common);
  await exchange(a.log, b.log, { verifier: pool }); // the common history
  await ingest(a.log, onlyA);
  await ingest(b.log, onlyB);
  const session = profile && values.profile !== undefined ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const x = await compressedExchange(a.log, b.log, verifier);
  const wallMs = performance.now() - t0;
  const cpuMs = cpuMsSince(c0);
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  if (a.log.headsDigest() !== b.log.headsDigest()) throw new Error('not converged');
  const eq = await exchange(a.log, b.log, { probe: true });
  await a.close();
  await b.close();
  return {
    bytes: x.plain,
    deflated: x.deflated,
    units: x.units,
    messages: x.messages,
    deflateMs: x.deflateMs,
    inflateMs: x.inflateMs,
    blockBytes: x.blockBytes,
    flights: x.flights,
    wallMs,
    cpuMs,
    equalBytes: eq.initiator.bytesSent + eq.responder.bytesSent,
  };
}

const round = (x: number): number => Number(x.toPrecision(5));

/** The gateway's verify pool (`ingest.verifyWorkers: auto`: one worker per core). */
const pool = new VerifyPool(availableParallelism());

/**
 * The same-run baseline: the device signatures of the frames an exchange moves, verified with
 * their Sig_structures and keys prepared beforehand (no decoding, no lmdb): on the main thread
 * alone, and on the pool in batches of 1 024 all handed over at once.
 */
async function verifyBaseline(
  fs: readonly DeviceFrame[],
): Promise<{ oneCoreMs: number; oneCoreCpuMs: number; poolMs: number }> {
  const keys = new Map(devices.map((d) => [d.id, fromHex(d.publicKeyHex)!]));
  const jobs: VerifyJob[] = fs.map((f) => {
    const c = decodeSign1(f.bytes);
    if (!c.ok) throw new Error(c.error.message);
    const { protectedBytes, payload, signature } = c.value;
    return { publicKey: keys.get(f.device)!, message: sigStructure(protectedBytes, payload), signature };
  });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const j of jobs) if (!verifyEd25519(j.publicKey, j.message, j.signature)) throw new Error('bad signature');
  const oneCoreMs = performance.now() - t0;
  const oneCoreCpuMs = cpuMsSince(c0);
  await pool.verify(jobs.slice(0, 2048)); // both workers up, as after the exchange's first batch
  const t1 = performance.now();
  const parts: Promise<boolean[]>[] = [];
  for (let i = 0; i < jobs.length; i += 1024) parts.push(pool.verify(jobs.slice(i, i + 1024)));
  if ((await Promise.all(parts)).some((r) => r.includes(false))) throw new Error('bad signature');
  return { oneCoreMs, oneCoreCpuMs, poolMs: performance.now() - t1 };
}

async function main(): Promise<void> {
  console.log(
    `outpost sync bench (${quick ? 'quick' : 'full'}): n = ${n} common, d = ${divergent.join(', ')} divergent frames each side; ours vs Yjs vs Automerge (n = ${nAutomerge})`,
  );
  const t0 = performance.now();
  const common = frames(1, n);
  const maxD = Math.max(...divergent);
  const allA = frames(2, maxD);
  const allB = frames(3, maxD);
  console.log(`signed ${n + 2 * maxD} frames in ${(performance.now() - t0).toFixed(0)} ms`);
  const rows: Row[] = [];
  const table: string[][] = [
    ['d', 'system', 'n', 'sync bytes', '÷ missing frame bytes', 'flights', 'wall ms', 'equal-check bytes'],
  ];
  for (const d of divergent) {
    const onlyA = allA.slice(0, d);
    const onlyB = allB.slice(0, d);
    const missing = [...onlyA, ...onlyB].reduce((s, f) => s + f.bytes.length, 0);
    const base = await verifyBaseline([...onlyA, ...onlyB]);
    const main = values['pool-only']
      ? { wallMs: Number.NaN, cpuMs: Number.NaN }
      : await ours(common, onlyA, onlyB, undefined, false);
    const o = await ours(common, onlyA, onlyB, pool, true);
    const ideal = base.oneCoreMs / 2;
    console.log(
      `d=${d}: exchange wall ${o.wallMs.toFixed(0)} ms on the pool (${pool.size} workers), ${main.wallMs.toFixed(0)} ms on the main thread; same-run baseline, ${2 * d} device signatures: ${base.oneCoreMs.toFixed(0)} ms on one core, ${base.poolMs.toFixed(0)} ms on the pool, ideal on two cores ${ideal.toFixed(0)} ms → wall ÷ ideal ${(o.wallMs / ideal).toFixed(2)}, ÷ pool ${(o.wallMs / base.poolMs).toFixed(2)}; process CPU ${o.cpuMs.toFixed(0)} ms on the pool, ${main.cpuMs.toFixed(0)} ms on the main thread, the raw verifies' ${base.oneCoreCpuMs.toFixed(0)} ms; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
    rows.push({
      figure: `sync wall time on the verify pool ÷ the same signatures verified on two cores (n=${n}, d=${d})`,
      value: round(o.wallMs),
      unit: 'ms',
      baseline: `raw verify of the ${2 * d} device signatures on one core ÷ 2`,
      baselineValue: round(ideal),
      ratio: round(o.wallMs / ideal),
      goal: '<= 1.2x',
      pass: o.wallMs / ideal <= 1.2,
    });
    rows.push({
      figure: `sync wall time on the verify pool ÷ raw verify on the pool (n=${n}, d=${d})`,
      value: round(o.wallMs),
      unit: 'ms',
      baseline: 'the same signatures verified on the pool, prepared beforehand',
      baselineValue: round(base.poolMs),
      ratio: round(o.wallMs / base.poolMs),
    });
    rows.push({
      figure: `sync CPU on the verify pool (all threads) ÷ the raw verifies' CPU (n=${n}, d=${d})`,
      value: round(o.cpuMs),
      unit: 'ms',
      baseline: 'the same signatures verified on one core, CPU',
      baselineValue: round(base.oneCoreCpuMs),
      ratio: round(o.cpuMs / base.oneCoreCpuMs),
    });
    rows.push({
      figure: `sync wall time on the main thread ÷ raw verify on one core (n=${n}, d=${d})`,
      value: round(main.wallMs),
      unit: 'ms',
      baseline: 'the same signatures verified on one core',
      baselineValue: round(base.oneCoreMs),
      ratio: round(main.wallMs / base.oneCoreMs),
    });
    console.log(
      `d=${d}: link compression ${o.bytes} → ${o.deflated} B (${((100 * o.deflated) / o.bytes).toFixed(1)} %), ${o.messages} messages in ${o.units} units, deflate ${o.deflateMs.toFixed(0)} ms + inflate ${o.inflateMs.toFixed(0)} ms of a ${o.wallMs.toFixed(0)} ms exchange`,
    );
    if (oursOnly) continue;
    const f: BaselineFrames = { devices: devices.map((x) => x.id), common, onlyA, onlyB };
    const y = yjsSync(f);
    const am = automergeSync({ ...f, common: common.slice(0, nAutomerge) });
    for (const [name, r] of [
      ['Yjs', y],
      ['Automerge', am],
    ] as const)
      if (!r.converged) throw new Error(`${name} did not converge`);
    const systems: [string, { n: number; bytes: number; flights: number; wallMs: number; equalBytes: number }][] = [
      ['outpost', { n, ...o }],
      ['outpost deflate', { n, ...o, bytes: o.deflated }],
      ['Yjs', y],
      ['Automerge', am],
    ];
    for (const [name, r] of systems)
      table.push([
        String(d),
        name,
        String(r.n),
        String(r.bytes),
        (r.bytes / missing).toFixed(4),
        String(r.flights),
        r.wallMs.toFixed(0),
        String(r.equalBytes),
      ]);

    const at = `n=${n}, d=${d}`;
    const ratio = o.bytes / o.blockBytes;
    rows.push({
      figure: `sync bytes ÷ missing block bytes (${at})`,
      value: round(ratio),
      unit: 'x',
      goal: '<= 1.05',
      pass: ratio <= 1.05,
    });
    rows.push({
      figure: `sync bytes with link compression, ours (${at})`,
      value: o.deflated,
      unit: 'B',
      baseline: 'missing frame bytes',
      baselineValue: missing,
      ratio: round(o.deflated / missing),
      goal: '<= 1.0x',
      pass: o.deflated / missing <= 1.0,
    });
    rows.push({
      figure: `sync bytes with link compression ÷ without (${at})`,
      value: o.deflated,
      unit: 'B',
      baseline: 'the same messages plain',
      baselineValue: o.bytes,
      ratio: round(o.deflated / o.bytes),
    });
    rows.push({
      figure: `link compression CPU, deflate + inflate (${at})`,
      value: round(o.deflateMs + o.inflateMs),
      unit: 'ms',
      baseline: 'the exchange wall time (verifying included)',
      baselineValue: round(o.wallMs),
      ratio: round((o.deflateMs + o.inflateMs) / o.wallMs),
    });
    rows.push({
      figure: `sync bytes without link compression, ours (${at})`,
      value: o.bytes,
      unit: 'B',
      baseline: 'missing frame bytes',
      baselineValue: missing,
      ratio: round(o.bytes / missing),
    });
    const vs = (name: string, r: BaselineResult): void => {
      const an = r.n === n ? '' : `, run at n=${r.n}`;
      rows.push({
        figure: `sync bytes, ${name} (${at}${an})`,
        value: r.bytes,
        unit: 'B',
        baseline: 'missing frame bytes',
        baselineValue: missing,
        ratio: round(r.bytes / missing),
      });
      rows.push({
        figure: `sync bytes, ours vs ${name} (${at}${an})`,
        value: o.bytes,
        unit: 'B',
        baseline: name,
        baselineValue: r.bytes,
        ratio: round(o.bytes / r.bytes),
      });
      rows.push({ figure: `sync flights, ${name} (${at}${an})`, value: r.flights, unit: 'flights' });
      rows.push({
        figure: `sync wall time, ours vs ${name} (${at}${an})`,
        value: round(o.wallMs),
        unit: 'ms',
        baseline: name,
        baselineValue: round(r.wallMs),
        ratio: round(o.wallMs / r.wallMs),
      });
    };
    // Flights: hello → vector + blocks → blocks; the first round trip tells both sides the difference.
    rows.push({
      figure: `sync flights, ours (${at})`,
      value: o.flights,
      unit: 'flights',
      goal: '<= 3 (1 RT to learn)',
      pass: o.flights <= 3,
    });
    vs('Yjs', y);
    vs('Automerge', am);
    if (d === divergent[0]) {
      rows.push({
        figure: `equal-state check bytes, ours (n=${n})`,
        value: o.equalBytes,
        unit: 'B',
        baseline: 'Yjs state vectors',
        baselineValue: y.equalBytes,
        ratio: round(o.equalBytes / y.equalBytes),
      });
      rows.push({
        figure: `equal-state check bytes, ours vs Automerge (n=${n})`,
        value: o.equalBytes,
        unit: 'B',
        baseline: 'Automerge',
        baselineValue: am.equalBytes,
        ratio: round(o.equalBytes / am.equalBytes),
      });
    }
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) console.log(r.map((x, c) => x.padStart(widths[c]!)).join('  '));
  console.log(
    `rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (all three systems' replicas built in this process)`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/sync.json', import.meta.url),
    JSON.stringify({ at: new Date().toISOString(), quick, n, nAutomerge, divergent, rows, table }, null, 2) + '\n',
  );
}

await main();
await pool.close();
