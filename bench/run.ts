/**
 * `npm run bench [-- --quick]`: ingest throughput against raw node:crypto
 * verify measured in the same run, latency percentiles and memory.
 * Prints a table of figure / baseline / ratio / goal and writes bench/results/ingest.json.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { decodeSign1, sigStructure, signBody } from '../protocols/index.js';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../gateway/crypto/ed25519.js';
import { memoryLogger, startTestGateway, tempDir } from '../test/helpers/env.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, devices: { type: 'string' }, profile: { type: 'string' }, workers: { type: 'string' }, inflight: { type: 'string' } } });
const quick = values.quick === true;
const devices = Number(values.devices ?? 1000);

/** Single-core raw verify of pre-built Sig_structures: the baseline. */
function rawVerifyPerSecond(seconds: number): number {
  const seed = randomBytes(32);
  const pub = publicKeyFromSeed(seed);
  const jobs = Array.from({ length: 256 }, (_, i) => {
    const frame = signBody({ type: 'reading', boot: 1, seq: i, records: [{ n: 'temp', u: 'Cel', v: i }] }, 'bench', (m) => signEd25519(seed, m));
    const d = decodeSign1(frame);
    if (!d.ok) throw new Error('bench frame does not decode');
    return { msg: sigStructure(d.value.protectedBytes, d.value.payload), sig: d.value.signature };
  });
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 64; i++) {
      const j = jobs[n++ % jobs.length]!;
      if (!verifyEd25519(pub, j.msg, j.sig)) throw new Error('baseline verify failed');
    }
  }
  return n / seconds;
}

interface LoadResult {
  acked: number;
  seconds: number;
  perSecond: number;
  pubackP50: number;
  pubackP99: number;
}

async function ingestRun(framesPerDevice: number): Promise<{ load: LoadResult; p50: number; p99: number; rssMb: number; stored: number }> {
  const tmp = tempDir('outpost-bench-');
  const { gw, url } = await startTestGateway(tmp.dir, [], values.workers ? { ingest: { verifyWorkers: Number(values.workers) } } : {});
  const gen = spawn(process.execPath, ['--import', 'tsx', new URL('./load-generator.ts', import.meta.url).pathname, '--url', url, '--devices', String(devices), '--frames', String(framesPerDevice), '--inflight', values.inflight ?? '4'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: gen.stdout! })[Symbol.asyncIterator]();
  const keys = JSON.parse((await lines.next()).value as string) as { keys: { id: string; publicKey: string }[] };
  for (const k of keys.keys) await gw.registry.enroll(k);
  gw.ingest.stats.takeLatencies();
  const session = values.profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  gen.stdin!.write('go\n');
  const load = JSON.parse((await lines.next()).value as string) as LoadResult;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(`load phase: generator cpu ${JSON.stringify(load)}; gateway process cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (all threads)`);
  const lat = gw.ingest.stats.takeLatencies().sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  const rssMb = process.memoryUsage().rss / 1e6;
  const stored = gw.store.frameCount();
  await gw.stop();
  tmp.cleanup();
  return { load, p50: q(0.5), p99: q(0.99), rssMb, stored };
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

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : String(n));

async function main(): Promise<void> {
  void memoryLogger;
  const framesPerDevice = quick ? 20 : 60;
  console.log(`outpost bench (${quick ? 'quick' : 'full'}): ${devices} devices x ${framesPerDevice} frames, MQTT QoS 1, durable append, PUBACK`);
  const raw = rawVerifyPerSecond(quick ? 1 : 3);
  const run = await ingestRun(framesPerDevice);
  const ratio = run.load.perSecond / raw;
  const rows: Row[] = [
    { figure: 'raw node:crypto verify, 1 core', value: raw, unit: 'ops/s' },
    { figure: 'ingest end to end', value: run.load.perSecond, unit: 'frames/s', baseline: 'raw verify', ratio, goal: '>= 1.5x', pass: ratio >= 1.5 },
    { figure: 'frame-to-durable p50 (gateway)', value: run.p50, unit: 'ms' },
    { figure: 'frame-to-durable p99 (gateway)', value: run.p99, unit: 'ms', goal: '<= 20 ms', pass: run.p99 <= 20 },
    { figure: 'publish-to-PUBACK p50 (device)', value: run.load.pubackP50, unit: 'ms' },
    { figure: 'publish-to-PUBACK p99 (device)', value: run.load.pubackP99, unit: 'ms' },
    { figure: 'gateway RSS after run', value: run.rssMb, unit: 'MB' },
  ];
  for (const r of rows) {
    console.log(
      `${r.figure.padEnd(34)} ${fmt(r.value).padStart(10)} ${r.unit.padEnd(9)} ${(r.baseline ?? '').padEnd(11)} ${r.ratio !== undefined ? fmt(r.ratio, 2) + 'x' : ''.padEnd(0)}`.padEnd(80) +
        ` ${(r.goal ?? '').padEnd(9)} ${r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL'}`,
    );
  }
  if (run.stored !== run.load.acked) console.log(`WARNING: ${run.load.acked} acked but ${run.stored} stored`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const out = { at: new Date().toISOString(), quick, devices, framesPerDevice, machine: createHash('sha1').update(String(process.arch)).digest('hex').slice(0, 0), rows };
  writeFileSync(new URL('./results/ingest.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
}

await main();
