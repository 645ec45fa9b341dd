/**
 * `node --import tsx bench/store-merged.ts [--quick] [--frames N] [--block F] [--rebuild]` (part
 * of `npm run bench`): one gateway holding 1 000 000 merged frames from 3 authors (its own
 * blocks and two siblings' synced blocks; bench/lib/merged-store.ts builds it once into
 * bench/.cache/merged-N-F-vS/, S the data format so a store of another format is not reused;
 * `--rebuild` to redo). `--quick`: 20 000 frames. Rows:
 * - disk bytes per frame held (lmdb file ÷ frames) ÷ the blocks' own bytes per frame (frame
 *   bytes + block overhead), with each table's share;
 * - query p99 through the one read model (FrameReader), in process and over HTTP from the
 *   compiled gateway: one device's last hour; a 1 000-row time range across all devices;
 * - replay (the `gateway rules test` path: lazily decoded frames through 200 rules) per
 *   CPU-second, against reading + decoding alone;
 * - restart via the compiled start (node bin/gateway.js start, `npm start`'s flags, no tsx),
 *   spawn → a new frame's PUBACK, median, against the same on an empty store, alternating;
 * - RSS of that gateway after the HTTP queries and a sync check with a sibling process holding
 *   the same blocks, against the same on the empty store (the stores' page cache dropped before
 *   the gateways start, so RSS counts what their own reads map in: bench/lib/smaps.ts).
 * Needs `npm run build` (dist/) first.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { FrameReader } from '../gateway/log/frames-index.js';
import { SCHEMA_VERSION } from '../gateway/log/upgrade.js';
import { Store } from '../gateway/store/store.js';
import { publicKeyFromSeed } from '../gateway/crypto/ed25519.js';
import { parseRuleFile } from '../rules/dsl/parse.js';
import { type LazyFrame, replay } from '../rules/replay/replay.js';
import { storedToRuleFrame } from '../rules/replay/stored.js';
import { tempDir } from '../test/helpers/env.js';
import { benchDevice } from './lib/devices.js';
import { procMemory, stopProcess } from './lib/gateway-process.js';
import { api, awaitExchange, configFile, ports, startCompiled, writeConfig } from './lib/merged-gateway.js';
import { buildMerged, catchUp, MERGED_DEVICES, type MergedMeta } from './lib/merged-store.js';
import { dropPageCache } from './lib/smaps.js';
import { ruleFile } from './lib/rules-workload.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    frames: { type: 'string' },
    block: { type: 'string' },
    rebuild: { type: 'boolean' },
  },
});
const quick = values.quick === true;
const N = Number(values.frames ?? (quick ? 20_000 : 1_000_000));
const BLOCK = Number(values.block ?? 64);
const QUERIES = quick ? 30 : 300;
const STARTS = quick ? 1 : 3;
const root = fileURLToPath(new URL('..', import.meta.url));
const cache = fileURLToPath(new URL(`./.cache/merged-${N}-${BLOCK}-v${SCHEMA_VERSION}/`, import.meta.url));
const k = `${N >= 1e6 ? N / 1e6 + 'M' : N / 1000 + 'k'} merged frames`;
const at = quick ? ' [quick]' : '';
const rows: Record<string, unknown>[] = [];
const round = (x: number): number => Number(x.toPrecision(4));
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const median = (xs: number[]): number => pct(xs, 50);
const row = (r: Record<string, unknown>): void => {
  if (r.baselineValue !== undefined && r.ratio === undefined)
    r.ratio = round((r.value as number) / (r.baselineValue as number));
  rows.push(r);
};

// --- the store -------------------------------------------------------------------------------
let meta: MergedMeta;
if (!values.rebuild && existsSync(join(cache, 'meta.json'))) {
  meta = JSON.parse(readFileSync(join(cache, 'meta.json'), 'utf8')) as MergedMeta;
  console.log(`using the merged store cached in ${cache} (built ${meta.at}; --rebuild to redo)`);
} else {
  console.log(`building ${N} merged frames (3 authors, blocks of ${BLOCK}) into ${cache}`);
  meta = await buildMerged(cache, N, BLOCK);
  console.log(`  built in ${meta.seconds.toFixed(0)} s`);
}
if (!meta.caughtUp) await catchUp(cache, meta);
const devices = meta.devices.map((d) => ({ ...benchDevice(d.id, Buffer.from(d.seed, 'hex')), author: d.author }));
const own = devices.filter((d) => d.author === 'gw-a');
const tmp = tempDir('outpost-bench-merged-');
const children: ChildProcess[] = [];

try {
  // --- disk ------------------------------------------------------------------------------------
  const fileBytes = statSync(join(cache, 'data', 'outpost.lmdb')).size;
  const logPerFrame = meta.blockBytes / meta.frames;
  row({
    figure: `disk bytes per frame held (lmdb file ${(fileBytes / 1e6).toFixed(0)} MB), ${k}, blocks of ${meta.blockFrames}${at}`,
    value: round(fileBytes / meta.frames),
    unit: 'B',
    baseline: 'frame bytes + block overhead per frame',
    baselineValue: round(logPerFrame),
    goal: '<= 1.15x',
  });
  const data = join(tmp.dir, 'data');
  cpSync(join(cache, 'data'), data, { recursive: true });
  const store = Store.open(data);
  const stats = (name: string): number => {
    const s = store.root.openDB({ name }).getStats() as Record<string, number>;
    return (s.treeBranchPageCount! + s.treeLeafPageCount! + s.overflowPages!) * s.pageSize!;
  };
  // Every table (the root's keys name them), largest first; the small ones summed.
  const tables = [...store.root.getKeys()]
    .filter((x): x is string => typeof x === 'string')
    .map((name) => ({ name, bytes: stats(name) }))
    .sort((a, b) => b.bytes - a.bytes);
  const big = tables.filter((t) => t.bytes / meta.frames >= 1);
  const small = tables.filter((t) => t.bytes / meta.frames < 1);
  for (const t of big)
    row({
      figure: `  of which ${t.name} (pages in use ÷ frames)${at}`,
      value: round(t.bytes / meta.frames),
      unit: 'B',
    });
  const used = tables.reduce((n, t) => n + t.bytes, 0);
  row({
    figure: `  of which ${small.length} small tables; pages not in use (free or pre-grown) ${(((fileBytes - used) / fileBytes) * 100).toFixed(0)} %${at}`,
    value: round(small.reduce((n, t) => n + t.bytes, 0) / meta.frames),
    unit: 'B',
  });

  // --- queries in process ----------------------------------------------------------------------
  const reader = FrameReader.plain(store.root);
  const lastHour = meta.last - 3_600_000;
  const pick = (i: number): string => devices[(i * 7919) % devices.length]!.id;
  const rangeAt = (i: number): number => meta.first + Math.floor(((i * 0.6180339887) % 1) * (meta.last - meta.first));
  const timeIt = (fn: (i: number) => number): { ms: number[]; cpu: number[]; rows: number } => {
    for (let i = 0; i < 10; i++) fn(i); // warm-up
    const ms: number[] = [];
    const cpu: number[] = [];
    let n = 0;
    for (let i = 0; i < QUERIES; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      n += fn(i);
      const c = process.cpuUsage(c0);
      ms.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
    return { ms, cpu, rows: n / QUERIES };
  };
  const count = (it: Iterable<unknown>): number => {
    let n = 0;
    for (const _ of it) n++;
    return n;
  };
  const devQ = timeIt((i) => count(reader.query({ device: pick(i), since: lastHour })));
  const rangeQ = timeIt((i) => count(reader.query({ since: rangeAt(i), limit: 1000 })));
  for (const [name, q] of [
    [`one device's last hour (${round(devQ.rows)} rows)`, devQ],
    ['1 000-row time range, all devices', rangeQ],
  ] as const) {
    row({
      figure: `query p99, ${name}, ${k}, FrameReader in process${at}`,
      value: round(pct(q.ms, 99)),
      unit: 'ms',
      baseline: 'p50',
      baselineValue: round(pct(q.ms, 50)),
      goal: '<= 50 ms',
      pass: pct(q.ms, 99) <= 50,
    });
    // The same in CPU time of this process: what the query costs, whatever the machine's load.
    row({
      figure: `  the same in CPU time, p99${at}`,
      value: round(pct(q.cpu, 99)),
      unit: 'ms',
      baseline: 'CPU p50',
      baselineValue: round(pct(q.cpu, 50)),
    });
  }

  // --- replay (gateway rules test) -------------------------------------------------------------
  const ruleSet = parseRuleFile('bench.yaml', ruleFile(200, MERGED_DEVICES));
  const sender = { model: 'press-vib-1', site: 'plant-a' };
  const lazy = function* (): Generator<LazyFrame> {
    for (const f of reader.query({}))
      yield { device: f.device, ...sender, time: f.rxTime, decode: () => storedToRuleFrame(f, sender) };
  };
  const cpu = (run: () => number): number => {
    const c0 = process.cpuUsage();
    const n = run();
    const c = process.cpuUsage(c0);
    return n / ((c.user + c.system) / 1e6);
  };
  const readRate = cpu(() => {
    let n = 0;
    for (const f of reader.query({})) if (storedToRuleFrame(f, sender)) n++;
    return n;
  });
  let decisions = 0;
  const replayRate = cpu(() => {
    const r = replay(ruleSet, lazy());
    decisions = r.decisions.length;
    return r.frames;
  });
  row({
    figure: `replay (rules test path): ${k} through 200 rules (${decisions} decisions), per CPU-second${at}`,
    value: Math.round(replayRate),
    unit: 'frames/s',
    baseline: 'reading + decoding every frame alone',
    baselineValue: Math.round(readRate),
    goal: '>= 100000 frames/s',
    pass: replayRate >= 100_000,
  });
  await store.close();

  // --- the compiled gateway: restart, HTTP queries, sync check, RSS ------------------------------
  const empty = join(tmp.dir, 'empty');
  cpSync(join(cache, 'empty'), empty, { recursive: true });
  const pa = await ports();
  const pe = await ports();
  const pb = await ports();
  const keyOf = (id: string): string =>
    Buffer.from(publicKeyFromSeed(Buffer.from(meta.seeds[id]!, 'hex'))).toString('hex');
  // gw-b: a sibling holding the same blocks (a copy of the store under its own key).
  const dataB = join(tmp.dir, 'data-b');
  cpSync(join(cache, 'data'), dataB, { recursive: true });
  writeFileSync(join(dataB, 'identity.key'), `${meta.seeds['gw-b']}\n`, { mode: 0o600 });
  const peerA = { id: 'gw-a', publicKey: keyOf('gw-a'), port: pa.sync };
  const peerB = { id: 'gw-b', publicKey: keyOf('gw-b'), port: pb.sync };
  writeConfig(configFile(tmp.dir, 'gw-a'), { id: 'gw-a', dataDir: data, ports: pa, devices: own, peers: [peerB] });
  // The baseline has no sibling: it would sync the whole log from gw-b.
  writeConfig(configFile(tmp.dir, 'empty'), { id: 'gw-a', dataDir: empty, ports: pe, devices: own });
  const ownB = devices.filter((d) => d.author === 'gw-b');
  writeConfig(configFile(tmp.dir, 'gw-b'), { id: 'gw-b', dataDir: dataB, ports: pb, devices: ownB, peers: [peerA] });
  // The in-process part above read the whole store, and the copies are fresh: from a cold page
  // cache, the gateways' RSS counts the pages their own reads bring in (bench/lib/smaps.ts).
  for (const d of [data, empty, dataB])
    if (!dropPageCache(join(d, 'outpost.lmdb'))) console.log(`could not drop ${d}'s page cache (dd): RSS counts it`);
  const dev = own[0]!;
  const full: number[] = [];
  const none: number[] = [];
  let fullGw: ChildProcess | undefined;
  let emptyGw: ChildProcess | undefined;
  for (let i = 0; i < STARTS; i++) {
    const last = i === STARTS - 1;
    const e = await startCompiled(root, configFile(tmp.dir, 'empty'), pe.mqtt, dev);
    none.push(e.ackMs);
    if (last) emptyGw = e.child;
    else await stopProcess(e.child);
    const f = await startCompiled(root, configFile(tmp.dir, 'gw-a'), pa.mqtt, dev);
    full.push(f.ackMs);
    if (last) fullGw = f.child;
    else await stopProcess(f.child);
  }
  children.push(emptyGw!, fullGw!);
  for (const goal of [2000, 1000])
    row({
      figure: `restart, ${k}: compiled start (node bin/gateway.js start) to a new frame acked, median of ${STARTS}${goal === 1000 ? ' (the 1 s start goal)' : ''}${at}`,
      value: Math.round(median(full)),
      unit: 'ms',
      baseline: 'same, empty store',
      baselineValue: Math.round(median(none)),
      goal: `<= ${goal} ms`,
      pass: median(full) <= goal,
    });
  // The same queries over HTTP (/api/frames: JSON of each row with its frame), then a sync check.
  const http = async (port: number, dataful: boolean): Promise<{ dev: number[]; range: number[] }> => {
    const out = { dev: [] as number[], range: [] as number[] };
    for (let i = 0; i < QUERIES + 5; i++) {
      const d = await api(port, `/api/frames?device=${pick(i)}&since=${lastHour}&limit=1000`);
      const r = await api(port, `/api/frames?since=${rangeAt(i)}&limit=1000`);
      if (i >= 5) {
        out.dev.push(d.ms);
        out.range.push(r.ms);
      }
      if (dataful && i === 0 && (r.body as { frames: unknown[] }).frames.length !== 1000)
        throw new Error(`a 1 000-row range gave ${(r.body as { frames: unknown[] }).frames.length} rows`);
    }
    return out;
  };
  const hf = await http(pa.api, true);
  const he = await http(pe.api, false);
  for (const [name, a, b] of [
    ["one device's last hour", hf.dev, he.dev],
    ['1 000-row time range, all devices', hf.range, he.range],
  ] as const)
    row({
      figure: `query p99 over HTTP (/api/frames, compiled gateway), ${name}, ${k}${at}`,
      value: round(pct(a, 99)),
      unit: 'ms',
      baseline: 'same request, empty store',
      baselineValue: round(pct(b, 99)),
      goal: '<= 50 ms',
      pass: pct(a, 99) <= 50,
    });
  const b = await startCompiled(root, configFile(tmp.dir, 'gw-b'), pb.mqtt, ownB[0]!);
  children.push(b.child);
  const syncMs = await awaitExchange(pa.api, 'gw-b');
  const mf = procMemory(fullGw!.pid!);
  const me = procMemory(emptyGw!.pid!);
  row({
    figure: `RSS, ${k}, compiled gateway after queries + a sync check${at}`,
    value: round(mf.rss),
    unit: 'MB',
    baseline: 'empty store after the same queries (no sibling)',
    baselineValue: round(me.rss),
    goal: '<= 200 MB',
    pass: mf.rss <= 200,
  });
  row({
    figure: `  of which anonymous (heap, workers, code)${at}`,
    value: round(mf.anon),
    unit: 'MB',
    baseline: 'empty store',
    baselineValue: round(me.anon),
  });
  row({
    figure: `  of which file-backed (binary, addons, lmdb pages mapped in)${at}`,
    value: round(mf.file),
    unit: 'MB',
    baseline: 'empty store',
    baselineValue: round(me.file),
  });
  row({
    figure: `sync check with a sibling holding the same blocks: sibling start to the exchange done${at}`,
    value: Math.round(syncMs),
    unit: 'ms',
  });
} finally {
  for (const c of children) await stopProcess(c);
  tmp.cleanup();
}

for (const r of rows)
  console.log(
    `${String(r.figure).padEnd(100)} ${String(r.value).padStart(9)} ${r.unit}${r.baselineValue !== undefined ? `  (${r.baseline}: ${r.baselineValue}, ratio ${r.ratio})` : ''}${r.goal ? `  goal ${r.goal}` : ''}`,
  );
for (const r of rows)
  if (typeof r.goal === 'string' && r.goal.endsWith('x')) r.pass = (r.ratio as number) <= Number(r.goal.slice(3, -1));
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/store-merged.json', import.meta.url),
  JSON.stringify(
    { at: new Date().toISOString(), quick, frames: N, meta: { ...meta, devices: undefined, seeds: undefined }, rows },
    null,
    2,
  ) + '\n',
);
process.exit(0);
