/**
 * `node --import tsx bench/ingest.ts [--quick]` (part of `npm run bench`): ingest throughput against raw node:crypto
 * verify measured in the same run, latency at a steady load, and memory.
 * Prints a table of figure / baseline / ratio / goal and writes bench/results/ingest.json.
 *
 * The gateway runs in this process (so its latency histogram and RSS are at
 * hand), with `npm start`'s node options (the bench re-runs itself with them); the 1000 devices
 * run in a separate load-generator process. The RSS is broken down by smaps mapping and V8 heap
 * before the load, after it and after a full GC.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeSign1, sigStructure, signBody } from '../protocols/index.js';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../gateway/crypto/ed25519.js';
import { startTestGateway, tempDir } from '../test/helpers/env.js';
import { startBareMosquitto } from './lib/bare-mosquitto.js';
import { startEnv, startFlags } from './lib/gateway-process.js';
import { generator } from './lib/generator.js';
import { type SmapsBreakdown, smapsBreakdown } from './lib/smaps.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    devices: { type: 'string' },
    workers: { type: 'string' },
    inflight: { type: 'string', default: '4' },
    /** Write a CPU profile of the gateway's main thread during the saturation phase. */
    profile: { type: 'string' },
    /** Skip the bare-Mosquitto baseline. */
    'no-mosquitto': { type: 'boolean' },
  },
});
const quick = values.quick === true;
// The gateway runs in this process: give it `npm start`'s node options (V8 heap sizing) and
// environment (glibc's malloc arenas, read when the process starts), as deployed.
const deployed = startFlags(new URL('..', import.meta.url).pathname);
const deployedEnv = startEnv(new URL('..', import.meta.url).pathname);
if (
  !deployed.every((f) => process.execArgv.includes(f)) ||
  Object.entries(deployedEnv).some(([k, v]) => process.env[k] !== v)
) {
  const child = spawn(process.execPath, [...deployed, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...deployedEnv },
  });
  const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
  process.exit(code);
}
const devices = Number(values.devices ?? (quick ? 500 : 1000));

/** Single-core raw verify of pre-built Sig_structures: the baseline. */
function rawVerifyPerSecond(seconds: number): { wall: number; cpu: number } {
  const seed = randomBytes(32);
  const pub = publicKeyFromSeed(seed);
  const jobs = Array.from({ length: 256 }, (_, i) => {
    const frame = signBody(
      { type: 'reading', boot: 1, seq: i, records: [{ n: 'temp', u: 'Cel', v: i }] },
      'bench',
      (m) => signEd25519(seed, m),
    );
    const d = decodeSign1(frame);
    if (!d.ok) throw new Error('bench frame does not decode');
    return { msg: sigStructure(d.value.protectedBytes, d.value.payload), sig: d.value.signature };
  });
  let n = 0;
  const cpu0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 64; i++) {
      const j = jobs[n++ % jobs.length]!;
      if (!verifyEd25519(pub, j.msg, j.sig)) throw new Error('baseline verify failed');
    }
  }
  const cpu = process.cpuUsage(cpu0);
  // Per CPU-second too: on a shared machine the wall-clock rate counts other jobs' time.
  return { wall: n / seconds, cpu: n / ((cpu.user + cpu.system) / 1e6) };
}

interface LoadResult {
  acked: number;
  seconds: number;
  perSecond: number;
  pubackP50: number;
  pubackP99: number;
  cpuSeconds: number;
}

const quantile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

interface MemoryNow {
  smaps: SmapsBreakdown;
  usage: NodeJS.MemoryUsage;
}

/**
 * This process's memory (the gateway runs in it, beside the bench's own few MB): smaps groups and
 * the main thread's V8 figures; `settled` after a full GC, so what is retained shows apart from
 * garbage not yet collected.
 */
function memoryNow(settled = false): MemoryNow {
  if (settled) {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  }
  return { smaps: smapsBreakdown('self'), usage: process.memoryUsage() };
}

interface Row {
  figure: string;
  value: number;
  unit: string;
  baseline?: string;
  ratio?: number;
  goal?: string;
  pass?: boolean;
}

function memoryRows(before: MemoryNow, after: MemoryNow, settled: MemoryNow): Row[] {
  const mb = (n: number): number => n / 1048576;
  const row = (figure: string, f: (m: MemoryNow) => number) => ({
    figure: `  ${figure}: after / settled (before)`,
    value: f(after),
    unit: `MB / ${f(settled).toFixed(1)} (${f(before).toFixed(1)})`,
  });
  return [
    row('lmdb pages mapped in', (m) => m.smaps.lmdb),
    row('anon < 1 MB a mapping: V8 heap pages', (m) => m.smaps.anonSmall),
    row('anon >= 1 MB: thread arenas, large objects', (m) => m.smaps.anonLarge),
    row('anon: brk heap (malloc)', (m) => m.smaps.brkHeap),
    row('file: node, libs, other', (m) => m.smaps.nodeBinary + m.smaps.libraries + m.smaps.otherFiles),
    row('main heap used', (m) => mb(m.usage.heapUsed)),
    row('main heap committed', (m) => mb(m.usage.heapTotal)),
    row('external (ArrayBuffers)', (m) => mb(m.usage.external)),
  ];
}

/**
 * The same generator, closed loop, against a bare Mosquitto (no verify, no store): what an MQTT
 * broker alone answers at QoS 1 on this machine. The generator signs nothing on the clock (its
 * frames are presigned), so where it, not the broker, is the bound, the generator's CPU shows it.
 */
async function bareMosquitto(generatorArgs: string[]): Promise<(LoadResult & { brokerCpu: number }) | undefined> {
  const tmp = tempDir('outpost-bench-mosquitto-');
  const broker = await startBareMosquitto(tmp.dir);
  if (!broker) {
    tmp.cleanup();
    return undefined;
  }
  try {
    const { ask, exit } = generator([...generatorArgs, '--url', broker.url]);
    await ask(); // its keys: a bare broker enrols nothing
    await ask('connect');
    const cpu0 = broker.cpuSeconds();
    const sat = await ask<LoadResult>('saturate');
    const brokerCpu = broker.cpuSeconds() - cpu0;
    exit();
    return { ...sat, brokerCpu };
  } finally {
    await broker.stop();
    tmp.cleanup();
  }
}

async function main(): Promise<void> {
  const framesPerDevice = quick ? 10 : 60;
  const pacedSeconds = quick ? 2 : 8;
  console.log(
    `outpost bench (${quick ? 'quick' : 'full'}) on ${cpus().length} cores: ${devices} devices over MQTT QoS 1, durable append, PUBACK`,
  );
  const { wall: raw, cpu: rawCpu } = rawVerifyPerSecond(quick ? 0.5 : 3);

  const tmp = tempDir('outpost-bench-');
  const { gw, url } = await startTestGateway(tmp.dir, [], {
    // Every device dials from one address (the load generator): the per-address flood limits
    // would refuse most CONNECTs (and a refused mqtt.js client with no reconnect never settles).
    mqtt: {
      port: 0,
      limits: { connectionsPerAddress: 100_000, pendingPerAddress: 100_000, connectsPerSecond: 100_000 },
    },
    ...(values.workers && { ingest: { verifyWorkers: Number(values.workers) } }),
  });
  const generatorArgs = [
    '--devices',
    String(devices),
    '--frames',
    String(framesPerDevice),
    '--inflight',
    values.inflight!,
  ];
  const { ask, exit } = generator([...generatorArgs, '--url', url]);
  const { keys } = await ask<{ keys: { id: string; publicKey: string }[] }>();
  // Concurrently, so one transaction (one at a time, each waits for its own fsync).
  await Promise.all(keys.map((k) => gw.registry.enroll(k)));
  await ask('connect');
  // Memory with the devices connected, before any frame: the baseline the run's growth is read against.
  const memBefore = memoryNow();

  // Phase 1: saturation (closed loop) for throughput.
  const session = values.profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  gw.ingest.stats.takeLatencies();
  const cpu0 = process.cpuUsage();
  const sat = await ask<LoadResult>('saturate');
  const gwCpu = process.cpuUsage(cpu0);
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  gw.ingest.stats.takeLatencies();

  // Phase 2: every device at 1 Hz (a busy real fleet), for latency.
  const oneHz = await ask<LoadResult>(`paced 1 ${pacedSeconds}`);
  const lat1 = gw.ingest.stats.takeLatencies().sort((a, b) => a - b);
  // Phase 3: a steady load at half the measured capacity.
  const hz = Math.max(0.1, (sat.perSecond * 0.5) / devices);
  const paced = await ask<LoadResult>(`paced ${hz.toFixed(3)} ${pacedSeconds}`);
  const lat = gw.ingest.stats.takeLatencies().sort((a, b) => a - b);
  const rssMb = process.memoryUsage().rss / 1e6;
  const memAfter = memoryNow();
  const memSettled = memoryNow(true);
  const stored = gw.frames.count();
  exit();
  await gw.stop();
  tmp.cleanup();
  const bare = values['no-mosquitto'] ? undefined : await bareMosquitto(generatorArgs);
  const bareRatio = bare ? sat.perSecond / bare.perSecond : NaN;

  const ratio = sat.perSecond / raw;
  const gwCpuPerFrameUs = ((gwCpu.user + gwCpu.system) / sat.acked) | 0;
  const rows: Row[] = [
    { figure: 'raw node:crypto verify, 1 core', value: raw, unit: 'ops/s' },
    { figure: 'raw node:crypto verify per CPU-second', value: rawCpu, unit: 'ops/s' },
    {
      figure: 'ingest end to end (saturated)',
      value: sat.perSecond,
      unit: 'frames/s',
      baseline: 'raw verify',
      ratio,
      goal: '>= 1.5x',
      pass: ratio >= 1.5,
    },
    {
      figure: 'gateway CPU per frame (all threads)',
      value: gwCpuPerFrameUs,
      unit: 'us',
      baseline: 'raw verify',
      ratio: gwCpuPerFrameUs / (1e6 / raw),
    },
    {
      figure: 'gateway CPU per frame ÷ one verify (CPU time)',
      value: gwCpuPerFrameUs / (1e6 / rawCpu),
      unit: 'x',
      ratio: gwCpuPerFrameUs / (1e6 / rawCpu),
      baseline: 'raw verify CPU',
      goal: '<= 1.3x',
      pass: gwCpuPerFrameUs / (1e6 / rawCpu) <= 1.3,
    },
    { figure: 'load generator CPU (same machine)', value: sat.cpuSeconds / sat.seconds, unit: 'cores' },
    ...(bare
      ? [
          { figure: 'bare Mosquitto, same generator (saturated)', value: bare.perSecond, unit: 'frames/s' },
          {
            figure: '  its generator CPU / Mosquitto CPU',
            value: bare.cpuSeconds / bare.seconds,
            unit: `cores / ${(bare.brokerCpu / bare.seconds).toFixed(2)}`,
          },
          {
            figure: 'ingest ÷ bare Mosquitto (saturated)',
            value: bareRatio,
            unit: 'x',
            baseline: 'Mosquitto',
            ratio: bareRatio,
            goal: '>= 0.75x',
            pass: bareRatio >= 0.75,
          },
        ]
      : [
          {
            figure: values['no-mosquitto']
              ? 'bare Mosquitto: not run (--no-mosquitto)'
              : 'bare Mosquitto: skipped, mosquitto not installed (npm run setup:system)',
            value: NaN,
            unit: '',
          },
        ]),
    { figure: `(steady: 1 Hz per device = ${devices} frames/s)`, value: NaN, unit: '' },
    { figure: 'frame-to-durable p50 (1 Hz)', value: quantile(lat1, 0.5), unit: 'ms' },
    {
      figure: 'frame-to-durable p99 (1 Hz)',
      value: quantile(lat1, 0.99),
      unit: 'ms',
      goal: '<= 20 ms',
      pass: quantile(lat1, 0.99) <= 20,
    },
    { figure: 'publish-to-PUBACK p99 (1 Hz)', value: oneHz.pubackP99, unit: 'ms' },
    { figure: `(steady: half capacity = ${(hz * devices).toFixed(0)} frames/s)`, value: NaN, unit: '' },
    { figure: 'frame-to-durable p50 (half capacity)', value: quantile(lat, 0.5), unit: 'ms' },
    {
      figure: 'frame-to-durable p99 (half capacity)',
      value: quantile(lat, 0.99),
      unit: 'ms',
      goal: '<= 20 ms',
      pass: quantile(lat, 0.99) <= 20,
    },
    { figure: 'publish-to-PUBACK p99 (half capacity)', value: paced.pubackP99, unit: 'ms' },
    { figure: 'publish-to-PUBACK p50 (saturated)', value: sat.pubackP50, unit: 'ms' },
    { figure: 'gateway RSS after run', value: rssMb, unit: 'MB', goal: '<= 200 MB', pass: rssMb <= 200 },
    ...memoryRows(memBefore, memAfter, memSettled),
  ];
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '');
  console.log(
    `${'figure'.padEnd(38)} ${'value'.padStart(10)} ${'unit'.padEnd(9)} ${'baseline'.padEnd(11)} ${'ratio'.padStart(7)}  ${'goal'.padEnd(9)} result`,
  );
  for (const r of rows) {
    console.log(
      `${r.figure.padEnd(38)} ${fmt(r.value).padStart(10)} ${r.unit.padEnd(9)} ${(r.baseline ?? '').padEnd(11)} ${(r.ratio !== undefined ? fmt(r.ratio, 2) + 'x' : '').padStart(7)}  ${(r.goal ?? '').padEnd(9)} ${r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL'}`,
    );
  }
  const expected = sat.acked + oneHz.acked + paced.acked;
  if (stored !== expected) console.log(`WARNING: ${expected} frames acked but ${stored} stored`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/ingest.json', import.meta.url),
    JSON.stringify({ at: new Date().toISOString(), quick, devices, framesPerDevice, rows }, null, 2) + '\n',
  );
}

await main();
