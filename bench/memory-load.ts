/**
 * `node --import tsx bench/memory-load.ts [--quick] [--devices N] [--root DIR]` (part of
 * `npm run bench`): the gateway's RSS after a 1 000-device run, as deployed. The compiled
 * gateway process with `npm start`'s node options (package.json) and N devices enrolled (1 000;
 * 200 in `--quick`); a firmware-sim fleet process of N MQTT devices (one connection each, node
 * signer) at 1 Hz each for 60 s (20 s), then at 4 Hz each for 30 s (10 s: near the 2-core box's
 * ingest capacity at 1 000 devices), then stopped. The gateway's RSS (anonymous and
 * file-backed, /proc/PID/status) is read at four points: started with no device connected (the
 * same-run baseline), at the end of the 1 Hz phase, at the end of the 4 Hz phase, 10 s after
 * the fleet stopped, and 40 s after it, once settled (the figure the ≤ 200 MB goal is on: the
 * 10 s reading catches V8 and the verify pool part-way back, see SETTLED_S); there also the
 * main thread's V8 heap (bench/lib/memory-probe.mjs). The fleet's acked count is printed, so a run that did not
 * load the gateway shows. `MEMLOAD_NODE_ARGS` adds node options after npm start's.
 * Then the same run again with the small memory profile as `npm run start:small` runs it (its
 * node options and `--small`: gateway/memory-profile.ts), its rows marked "small profile". Each
 * runs with its script's environment too (`MALLOC_ARENA_MAX=2 node …`).
 * `--standard-only` skips that second run.
 *
 * bench/ingest.ts reports an RSS after its run too, but its gateway runs inside the bench's own
 * process (tsx, the test helpers and the bench's figures loaded: ~170 MB before any device).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateManifest, publicView, writeManifest } from '../firmware-sim/manifest.js';
import { freePort, tempDir } from '../test/helpers/env.js';
import { type ProcMemory, procMemory, startScript, stopProcess } from './lib/gateway-process.js';
import { type SmapsBreakdown, smapsBreakdown } from './lib/smaps.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    devices: { type: 'string' },
    root: { type: 'string' },
    'standard-only': { type: 'boolean' },
  },
});
const quick = values.quick === true;
const N = Number(values.devices ?? (quick ? 200 : 1000));
const root = resolve(values.root ?? fileURLToPath(new URL('../', import.meta.url)));
const PHASES: readonly { hz: number; seconds: number }[] = quick
  ? [
      { hz: 1, seconds: 20 },
      { hz: 4, seconds: 10 },
    ]
  : [
      { hz: 1, seconds: 60 },
      { hz: 4, seconds: 30 },
    ];
const SETTLE_S = 10;
/**
 * The second reading, once the run's state has settled: the verify pool's extra worker stops
 * after 30 s idle, and V8's memory reducer gives back the run's heap 18–28 s after the load
 * ends (bench/README.md, "Gateway RSS after a 1 000-device run: malloc arenas, the verify pool").
 */
const SETTLED_S = 40;
/** MEMLOAD_NODE_ARGS: more node options for the gateway, after npm start's (e.g. `--max-semi-space-size=2`). */
const extraNodeArgs = process.env.MEMLOAD_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fleet process at `hz` per device until stopped; resolves its last acked count when it exits. */
function runFleet(keys: string, url: string, hz: number): { child: ChildProcess; acked: () => number } {
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin', 'firmware-sim.js'),
      'fleet',
      '--keys',
      keys,
      '--rate',
      String(hz),
      '--broker',
      url,
      '--signer',
      'node',
      '--status',
      '2',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let acked = 0;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const m = /acked=(\d+)/.exec(l);
    if (m) acked = Number(m[1]);
  });
  return { child, acked: () => acked };
}

interface Profile {
  /** Prefix of its rows ('' for npm start's). */
  readonly tag: string;
  /** The package.json script it runs as. */
  readonly script: 'start' | 'start:small';
}

/** One gateway run through the phases with `profile`: its rows, on a data directory of its own. */
async function measure(profile: Profile, children: ChildProcess[], dir: string): Promise<Row[]> {
  const manifest = generateManifest({ devices: N, prefix: 'mem' });
  const keys = join(dir, 'fleet.json');
  writeManifest(keys, manifest);
  const port = await freePort();
  const cfg = join(dir, 'outpost.yaml');
  writeFileSync(
    cfg,
    [
      `gateway: { id: gw-bench, dataDir: ${JSON.stringify(join(dir, 'data'))} }`,
      `mqtt: { port: ${port} }`,
      'api: { enabled: false }',
      'simulate: { devices: 0 }',
      'devices:',
      ...publicView(manifest).devices.map((d) => `  - { id: ${d.id}, publicKey: "${d.publicKey}" }`),
    ].join('\n'),
  );
  const probeOut = join(dir, 'probe.json');
  const script = startScript(root, profile.script);
  const nodeArgs = [...script.nodeArgs, ...extraNodeArgs];
  const gw = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--import',
      fileURLToPath(new URL('./lib/memory-probe.mjs', import.meta.url)),
      join(root, 'bin', 'gateway.js'),
      'start',
      ...script.args,
      '--config',
      cfg,
      '--no-simulate',
    ],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...script.env, OUTPOST_MEMORY_PROBE: probeOut },
    },
  );
  children.push(gw);
  await new Promise<void>((ok, fail) => {
    createInterface({ input: gw.stdout! }).on('line', (l) => l.includes('"event":"ready"') && ok());
    gw.once('exit', (code) => fail(new Error(`gateway exited (${code})`)));
  });
  await sleep(3000);
  const points: { label: string; mem: ProcMemory; smaps: SmapsBreakdown; acked: number }[] = [];
  const mark = (label: string, acked: number): void => {
    points.push({ label, mem: procMemory(gw.pid!), smaps: smapsBreakdown(gw.pid!), acked });
  };
  mark('started, no device', 0);
  let acked = 0;
  for (const p of PHASES) {
    const fleet = runFleet(keys, `mqtt://127.0.0.1:${port}`, p.hz);
    children.push(fleet.child);
    await sleep(p.seconds * 1000);
    mark(`end of ${p.hz} Hz × ${N} devices (${p.seconds} s)`, acked + fleet.acked());
    await stopProcess(fleet.child);
    acked += fleet.acked();
  }
  await sleep(SETTLE_S * 1000);
  mark(`${SETTLE_S} s after the fleet stopped`, acked);
  await sleep((SETTLED_S - SETTLE_S) * 1000);
  mark(`${SETTLED_S} s after the fleet stopped (settled)`, acked);
  gw.kill('SIGUSR2');
  let usage: NodeJS.MemoryUsage | undefined;
  for (let i = 0; i < 50 && !usage; i++) {
    await sleep(100);
    try {
      usage = (JSON.parse(readFileSync(probeOut, 'utf8')) as { usage: NodeJS.MemoryUsage }).usage;
    } catch {
      // not written yet
    }
  }
  await stopProcess(gw);
  const fileMb = statSync(join(dir, 'data', 'outpost.lmdb')).size / MB;

  const q = `${quick ? 'quick: ' : ''}${profile.tag}`;
  const base = points[0]!.mem.rss;
  const after = points.at(-1)!.mem.rss;
  console.log(
    `${profile.script}: root ${root}; environment: ${
      Object.entries(script.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '(none)'
    }; node options: ${nodeArgs.join(' ') || '(none)'} start ${script.args.join(' ')}`,
  );
  return [
    ...points.map((p, i) => ({
      figure: `${q}gateway RSS, ${N}-device run: ${p.label}`,
      value: p.mem.rss,
      unit: 'MB',
      ...(i > 0 && { baseline: 'the same gateway started, no device', baselineValue: base, ratio: p.mem.rss / base }),
      // The goal is npm start's; the small profile's rows are beside it, without one.
      ...(i === points.length - 1 && profile.script === 'start' && { goal: '<= 200 MB', pass: after <= 200 }),
    })),
    ...points.map((p) => ({
      figure: `${q}of it anonymous / file-backed: ${p.label}`,
      value: p.mem.anon,
      unit: `MB anon (file ${p.mem.file.toFixed(1)} MB)`,
    })),
    ...points.map((p) => ({
      figure: `${q}of it lmdb's map / node binary / anonymous mappings (V8 heaps, thread arenas) / malloc: ${p.label}`,
      value: p.smaps.lmdb,
      unit: `MB (${[p.smaps.nodeBinary, p.smaps.anonLarge + p.smaps.anonSmall, p.smaps.brkHeap].map((x) => x.toFixed(1)).join(' / ')} MB)`,
    })),
    ...(usage
      ? [
          { figure: `${q}main-thread V8 heap used after the run`, value: usage.heapUsed / MB, unit: 'MB' },
          { figure: `${q}main-thread V8 heap committed after the run`, value: usage.heapTotal / MB, unit: 'MB' },
          {
            figure: `${q}main-thread external (of it ArrayBuffers) after the run`,
            value: usage.external / MB,
            unit: `MB (${(usage.arrayBuffers / MB).toFixed(1)} MB)`,
          },
        ]
      : []),
    ...points.slice(1, -1).map((p, i) => ({
      figure: `${q}frames acked to the fleet, ${p.label.replace(/^end of /, '')}`,
      value: p.acked - (points[i]?.acked ?? 0),
      unit: 'frames',
    })),
    { figure: `${q}the store's lmdb file after the run`, value: fileMb, unit: 'MB' },
  ];
}

async function main(): Promise<void> {
  const tmp = tempDir('outpost-bench-memload-');
  const children: ChildProcess[] = [];
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });
  try {
    const profiles: Profile[] = [
      { tag: '', script: 'start' },
      ...(values['standard-only']
        ? []
        : [{ tag: 'small profile (npm run start:small): ', script: 'start:small' } as const]),
    ];
    const rows: Row[] = [];
    for (const [i, profile] of profiles.entries()) {
      const dir = join(tmp.dir, String(i));
      mkdirSync(dir);
      rows.push(...(await measure(profile, children, dir)));
    }
    for (const r of rows)
      console.log(
        `${r.figure}: ${r.value.toFixed(1)} ${r.unit}${r.baseline ? ` (${r.baseline}: ${r.baselineValue!.toFixed(1)} MB)` : ''}${r.goal ? ` goal ${r.goal}: ${r.pass ? 'pass' : 'FAIL'}` : ''}`,
      );
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL('./results/memory-load.json', import.meta.url),
      `${JSON.stringify({ at: new Date().toISOString(), quick, root, devices: N, rows }, null, 2)}\n`,
    );
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    tmp.cleanup();
  }
}

await main();
