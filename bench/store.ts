/**
 * `node --import tsx bench/store.ts [--quick] [--frames N] [--rebuild]` (part of
 * `npm run bench`): the gateway holding 1 000 000 frames (RSS ≤ 200 MB; the restart, from source,
 * against the same start on an empty store: the ≤ 2 s goal is judged on the compiled start in
 * store-merged.ts). `--quick` uses 100 000 frames and says so in each row.
 *
 * The store is built once through the real pipeline (Gateway.start, pre-signed frames from
 * 1 000 devices submitted to ingest: verify pool, replay memory, lmdb, one signed log block
 * per batch) and cached under bench/.cache/store-N/ (gitignored; `--rebuild` builds it
 * again). Then bench/lib/store-child.ts starts a fresh gateway process on it and reports:
 * time from process start to the PUBACK of a new frame over MQTT, Gateway.start alone, and
 * RSS after start, after queries and after a sync check. Baseline: the same child on a data
 * dir with the same 1 000 devices enrolled and no frames, in the same run. The data dir is copied first
 * so the cache stays as built.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { validateConfig } from '../gateway/config.js';
import { Gateway } from '../gateway/gateway.js';
import { memoryLogger, tempDir } from '../test/helpers/env.js';
import { benchDevice } from './lib/devices.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean' }, frames: { type: 'string' }, rebuild: { type: 'boolean' } },
});
const quick = values.quick === true;
const N = Number(values.frames ?? (quick ? 100_000 : 1_000_000));
const DEVICES = 1000;
const cache = fileURLToPath(new URL(`./.cache/store-${N}/`, import.meta.url));

interface Built {
  frames: number;
  seconds: number;
  perSecond: number;
  at: string;
}

async function build(): Promise<Built> {
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const devices = Array.from({ length: DEVICES }, (_, i) =>
    benchDevice(`bench-${String(i).padStart(4, '0')}`, randomBytes(32)),
  );
  writeFileSync(
    join(cache, 'devices.json'),
    JSON.stringify(devices.map((d) => ({ id: d.id, seed: Buffer.from(d.seed).toString('hex') }))),
  );
  const config = validateConfig({
    gateway: { id: 'gw-bench', dataDir: join(cache, 'data') },
    mqtt: { enabled: false },
    devices: devices.map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
    simulate: { devices: 0 },
    api: { enabled: false },
  });
  const gw = await Gateway.start(config, { logger: memoryLogger().log, simulate: false });
  const t0 = performance.now();
  const perDevice = Math.ceil(N / DEVICES);
  let submitted = 0;
  let stored = 0;
  const inflight = new Set<Promise<void>>();
  // Round-robin over devices, seq rising per device: as a fleet would deliver them.
  for (let seq = 0; seq < perDevice && submitted < N; seq++) {
    for (let i = 0; i < DEVICES && submitted < N; i++) {
      const d = devices[i]!;
      const p = gw.ingest.submit(d.frame(1, seq), { transport: 'bench', claimedDevice: d.id }).then((o) => {
        if (o.status !== 'stored') throw new Error(`build: frame ${d.id} ${seq} ${o.status}: ${JSON.stringify(o)}`);
        stored++;
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      submitted++;
      if (inflight.size >= 4096) await Promise.race(inflight);
      if (submitted % 100_000 === 0)
        console.log(`  built ${submitted} of ${N} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  await Promise.all(inflight);
  const seconds = (performance.now() - t0) / 1000;
  if (stored !== N || gw.frames.count() !== N)
    throw new Error(`build stored ${stored}, store holds ${gw.frames.count()}, wanted ${N}`);
  await gw.stop();
  await enrolledEmpty(config.devices);
  const built = { frames: N, seconds, perSecond: N / seconds, at: new Date().toISOString() };
  writeFileSync(join(cache, 'built.json'), JSON.stringify(built));
  return built;
}

/** The baseline's data dir: the same devices enrolled, no frames (enrolling 1 000 devices is not restart work). */
async function enrolledEmpty(devices: readonly { id: string; publicKey: string }[]): Promise<void> {
  const config = validateConfig({
    gateway: { id: 'gw-bench', dataDir: join(cache, 'empty') },
    mqtt: { enabled: false },
    devices,
    simulate: { devices: 0 },
    api: { enabled: false },
  });
  await (await Gateway.start(config, { logger: memoryLogger().log, simulate: false })).stop();
}

interface ChildResult {
  frames: number;
  importedMs: number;
  startCalledMs: number;
  gatewayStartMs: number;
  connectedMs: number;
  acceptingMs: number;
  rssStart: number;
  rssQuery: number;
  rssSync: number;
  rssSyncAnon?: number;
  rssSyncFile?: number;
  rssScan?: number;
  scanMs?: number;
}

let childDevices = '';

function restart(dataDir: string, scan: boolean): Promise<ChildResult & { parentMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const args = [
      '--import',
      'tsx',
      fileURLToPath(new URL('./lib/store-child.ts', import.meta.url)),
      '--data',
      dataDir,
      '--devices',
      childDevices,
    ];
    const child = spawn(process.execPath, scan ? [...args, '--scan'] : args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`store child exit ${code}: ${line}`));
      resolve({ ...(JSON.parse(line) as ChildResult), parentMs: performance.now() - t0 });
    });
  });
}

/** Spawn to exit of a bare `node -e 0`: the floor of any restart, for the loading row. */
function bareNodeMs(): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).on('close', () => resolve(performance.now() - t0));
  });
}

async function main(): Promise<void> {
  console.log(`outpost store bench (${quick ? 'quick' : 'full'}): ${N} frames from ${DEVICES} devices`);
  let built: Built | undefined;
  const reuse = !values.rebuild && existsSync(join(cache, 'built.json'));
  if (reuse) {
    console.log(
      `using the store cached in ${cache} (built ${(JSON.parse(readFileSync(join(cache, 'built.json'), 'utf8')) as Built).at}; --rebuild to build it again)`,
    );
  } else {
    console.log(`building ${N} frames through the ingest pipeline into ${cache}`);
    built = await build();
  }
  const tmp = tempDir('outpost-bench-store-');
  try {
    // The child's config lists public keys (as gateway.yaml would); only device 0's seed, to send one frame.
    const list = JSON.parse(readFileSync(join(cache, 'devices.json'), 'utf8')) as { id: string; seed: string }[];
    childDevices = join(tmp.dir, 'devices.json');
    writeFileSync(
      childDevices,
      JSON.stringify(
        list.map((d, i) => ({
          id: d.id,
          publicKey: benchDevice(d.id, Buffer.from(d.seed, 'hex')).publicKeyHex,
          ...(i === 0 ? { seed: d.seed } : {}),
        })),
      ),
    );
    const full = join(tmp.dir, 'full');
    cpSync(join(cache, 'data'), full, { recursive: true });
    if (!existsSync(join(cache, 'empty'))) {
      await enrolledEmpty(
        list.map((d) => ({ id: d.id, publicKey: benchDevice(d.id, Buffer.from(d.seed, 'hex')).publicKeyHex })),
      );
    }
    const empty = join(tmp.dir, 'empty');
    cpSync(join(cache, 'empty'), empty, { recursive: true });
    const bare = Math.min(await bareNodeMs(), await bareNodeMs());
    const e = await restart(empty, false);
    const f = await restart(full, false);
    // Full mode also reads every frame once (what that does to RSS), in a third process.
    const s = quick ? f : await restart(full, true);
    if (f.frames < N) throw new Error(`restarted store holds ${f.frames} frames, expected ${N}`);
    const at = quick ? ' [quick]' : '';
    const k = `${N >= 1e6 ? N / 1e6 + 'M' : N / 1000 + 'k'} frames`;
    const rows: Record<string, unknown>[] = [
      // From source through tsx (~1.5 s of module compiling, the row below), so what grows with the
      // store is the ratio; the ≤ 2 s goal is judged on the compiled start users run (store-merged.ts).
      {
        figure: `restart, ${k}: process start to a new frame acked, from source${at}`,
        value: Math.round(f.acceptingMs),
        unit: 'ms',
        baseline: 'same, no frames',
        baselineValue: Math.round(e.acceptingMs),
        ratio: round(f.acceptingMs / e.acceptingMs),
      },
      {
        figure: `restart, ${k}: Gateway.start alone${at}`,
        value: Math.round(f.gatewayStartMs),
        unit: 'ms',
        baseline: 'same, no frames',
        baselineValue: Math.round(e.gatewayStartMs),
        ratio: round(f.gatewayStartMs / e.gatewayStartMs),
      },
      {
        figure: `restart: node + tsx + module loading${at}`,
        value: Math.round(f.importedMs),
        unit: 'ms',
        baseline: 'bare node -e 0, spawn to exit',
        baselineValue: Math.round(bare),
        ratio: round(f.importedMs / bare),
      },
      {
        figure: `restart: config with ${DEVICES} devices validated${at}`,
        value: Math.round(f.startCalledMs - f.importedMs),
        unit: 'ms',
      },
      {
        figure: `restart, ${k}: Gateway.start done to first frame acked${at}`,
        value: Math.round(f.acceptingMs - f.startCalledMs - f.gatewayStartMs),
        unit: 'ms',
        baseline: 'same, no frames',
        baselineValue: Math.round(e.acceptingMs - e.startCalledMs - e.gatewayStartMs),
      },
      {
        figure: `restart, ${k}: of which the frame's publish to PUBACK${at}`,
        value: Math.round(f.acceptingMs - f.connectedMs),
        unit: 'ms',
        baseline: 'same, no frames',
        baselineValue: Math.round(e.acceptingMs - e.connectedMs),
      },
      { figure: `restart, ${k}: spawn to exit, seen by the parent${at}`, value: Math.round(f.parentMs), unit: 'ms' },
      {
        figure: `RSS, ${k} stored, after start${at}`,
        value: f.rssStart,
        unit: 'MB',
        baseline: 'same, no frames',
        baselineValue: e.rssStart,
        ratio: round(f.rssStart / e.rssStart),
      },
      {
        figure: `RSS, ${k} stored, after queries + sync check${at}`,
        value: f.rssSync,
        unit: 'MB',
        baseline: 'same, no frames',
        baselineValue: e.rssSync,
        ratio: round(f.rssSync / e.rssSync),
        goal: '<= 200 MB',
        pass: f.rssSync <= 200,
      },
    ];
    if (f.rssSyncAnon !== undefined && e.rssSyncAnon !== undefined) {
      rows.push({
        figure: `  of which anonymous (heap, workers, code)${at}`,
        value: f.rssSyncAnon,
        unit: 'MB',
        baseline: 'same, no frames',
        baselineValue: e.rssSyncAnon,
        ratio: round(f.rssSyncAnon / e.rssSyncAnon),
      });
      rows.push({
        figure: `  of which file-backed (lmdb pages mapped in)${at}`,
        value: f.rssSyncFile,
        unit: 'MB',
        baseline: 'same, no frames',
        baselineValue: e.rssSyncFile,
      });
    }
    if (s.rssScan !== undefined) {
      rows.push({ figure: `RSS after reading all ${k} (lmdb pages mapped in)`, value: s.rssScan, unit: 'MB' });
      rows.push({ figure: `read all ${k} (queryFrames)`, value: Math.round(N / (s.scanMs! / 1000)), unit: 'frames/s' });
    }
    if (built)
      rows.push({
        figure: `build: pre-signed frames through ingest.submit (no transport)`,
        value: Math.round(built.perSecond),
        unit: 'frames/s',
      });
    for (const r of rows)
      console.log(
        `${String(r.figure).padEnd(78)} ${String(r.value).padStart(9)} ${r.unit}${r.baselineValue !== undefined ? `  (${r.baseline}: ${r.baselineValue})` : ''}${r.goal ? `  goal ${r.goal} ${r.pass ? 'pass' : 'FAIL'}` : ''}`,
      );
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL('./results/store.json', import.meta.url),
      JSON.stringify(
        { at: new Date().toISOString(), quick, frames: N, built, empty: e, full: f, scan: s, rows },
        null,
        2,
      ) + '\n',
    );
  } finally {
    tmp.cleanup();
  }
}

const round = (x: number): number => Number(x.toPrecision(4));

await main();
