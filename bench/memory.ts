/**
 * `node --import tsx bench/memory.ts [--quick] [--root DIR] [--settle S] [--starts N]` (part of
 * `npm run bench`): what the default `npm start` costs in memory and start time, for a Pi.
 *
 * - idle RSS of the gateway process running `npm start`'s node options (read from package.json)
 *   with the out-of-the-box config (embedded aedes, local store, API, the 20-device simulated
 *   fleet, which is its own process) after `--settle` seconds (30; 10 in `--quick`), split into
 *   anonymous memory (heaps, worker isolates, native allocations) and file-backed pages (the node
 *   binary's code, lmdb's map); the main thread's V8 heap used and committed, external memory and
 *   ArrayBuffers (bench/lib/memory-probe.mjs, asked over SIGUSR2); threads; the fleet's own RSS.
 * - process start → first frame acked on an empty store (median of `--starts`), as startup.ts, and
 *   the CPU time the gateway process spent until then (wall time on a loaded machine is mostly waiting).
 *
 * Baseline, same run: a bare `node -e` process (the floor any Node program pays). `--root DIR`
 * measures another checkout with node_modules and dist/ (an earlier commit: before and after
 * in one session). Writes bench/results/memory.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { tempDir } from '../test/helpers/env.js';
import {
  childPids,
  firstAck,
  type GatewaySpawn,
  procMemory,
  spawnGateway,
  startEnv,
  startFlags,
  stopProcess,
} from './lib/gateway-process.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    root: { type: 'string' },
    settle: { type: 'string' },
    starts: { type: 'string' },
  },
});
const quick = values.quick === true;
const root = resolve(values.root ?? fileURLToPath(new URL('../', import.meta.url)));
const settleS = Number(values.settle ?? (quick ? 10 : 30));
const starts = Number(values.starts ?? (quick ? 3 : 5));
const probe = fileURLToPath(new URL('./lib/memory-probe.mjs', import.meta.url));
const MB = 1024 * 1024;

interface Probe {
  usage: NodeJS.MemoryUsage;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS (MB) of a bare `node -e` process after a second. */
async function bareNode(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await sleep(1000);
    return procMemory(child.pid!).rss;
  } finally {
    await stopProcess(child);
  }
}

/** The idle gateway with the demo fleet, after `settleS`: /proc figures, the probe's, the fleet's RSS. */
async function idle(g: GatewaySpawn) {
  const tmp = tempDir('outpost-bench-mem-');
  const cfg = join(tmp.dir, 'outpost.yaml');
  const probeOut = join(tmp.dir, 'probe.json');
  // `npm start` without a config, but on free ports and a fresh data directory.
  writeFileSync(
    cfg,
    `gateway: { id: gw-bench, dataDir: ${JSON.stringify(join(tmp.dir, 'data'))} }\nmqtt: { port: 0 }\napi: { port: 0 }\n`,
  );
  const child = spawnGateway(
    { ...g, nodeArgs: [...(g.nodeArgs ?? []), '--import', probe], env: { OUTPOST_MEMORY_PROBE: probeOut } },
    ['--config', cfg],
  );
  try {
    await sleep(settleS * 1000);
    if (child.exitCode !== null) throw new Error(`gateway in ${g.root} exited ${child.exitCode}`);
    const proc = procMemory(child.pid!);
    const fleet = childPids(child.pid!).map((p) => procMemory(p).rss);
    child.kill('SIGUSR2');
    let p: Probe | undefined;
    for (let i = 0; i < 50 && !p; i++) {
      await sleep(100);
      try {
        p = JSON.parse(readFileSync(probeOut, 'utf8')) as Probe;
      } catch {
        // not written yet
      }
    }
    if (!p) throw new Error('the memory probe did not answer');
    return { proc, fleet: fleet.reduce((a, b) => a + b, 0), usage: p.usage };
  } finally {
    await stopProcess(child);
    tmp.cleanup();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const g: GatewaySpawn = { root, nodeArgs: startFlags(root), env: startEnv(root) };
  await firstAck(g); // dist/ current before timing (a stale one is rebuilt here, not in a timed run)
  const acks: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < starts; i++) {
    const a = await firstAck(g);
    acks.push(a.ms);
    cpus.push(a.cpuMs);
  }
  const bare = await bareNode();
  const m = await idle(g);
  const q = quick ? 'quick: ' : '';
  const idleFig = (what: string) => `${q}${what}, idle gateway with the 20-device fleet (after ${settleS} s)`;
  const vs = { baseline: 'bare node -e process', baselineValue: bare };
  const rows: Row[] = [
    {
      figure: idleFig('RSS'),
      value: m.proc.rss,
      unit: 'MB',
      ...vs,
      ratio: m.proc.rss / bare,
      goal: '<= 120 MB',
      pass: m.proc.rss <= 120,
    },
    { figure: idleFig('RSS anonymous (heaps, isolates, native)'), value: m.proc.anon, unit: 'MB' },
    { figure: idleFig('RSS file-backed (node binary, lmdb map)'), value: m.proc.file, unit: 'MB' },
    { figure: idleFig('main-thread V8 heap used'), value: m.usage.heapUsed / MB, unit: 'MB' },
    { figure: idleFig('main-thread V8 heap committed'), value: m.usage.heapTotal / MB, unit: 'MB' },
    {
      figure: idleFig('main-thread external memory (ArrayBuffers included)'),
      value: m.usage.external / MB,
      unit: 'MB',
    },
    {
      figure: idleFig('main-thread ArrayBuffers (lmdb read buffer: mostly untouched)'),
      value: m.usage.arrayBuffers / MB,
      unit: 'MB',
    },
    { figure: idleFig('threads'), value: m.proc.threads, unit: 'threads' },
    { figure: idleFig('RSS of the fleet process (firmware-sim)'), value: m.fleet, unit: 'MB' },
    {
      figure: `${q}process start → first frame acked, empty store (median of ${starts})`,
      value: median(acks),
      unit: 'ms',
      goal: '<= 1000 ms',
      pass: median(acks) <= 1000,
    },
    {
      figure: `${q}CPU time of the gateway process from start to first frame acked (median of ${starts})`,
      value: median(cpus),
      unit: 'ms',
    },
  ];
  console.log(`root ${root}; npm start node options: ${g.nodeArgs?.join(' ') || '(none)'}`);
  for (const r of rows)
    console.log(
      `${r.figure}: ${r.value.toFixed(1)} ${r.unit}${r.baseline ? ` (${r.baseline}: ${r.baselineValue!.toFixed(1)} ${r.unit})` : ''}`,
    );
  console.log(`start → first ack, all runs (ms): ${acks.map((x) => x.toFixed(0)).join(' ')}; CPU ${cpus.join(' ')}`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/memory.json', import.meta.url),
    `${JSON.stringify({ at: new Date().toISOString(), quick, root, rows }, null, 2)}\n`,
  );
}

await main();
