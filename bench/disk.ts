/**
 * `node --import tsx bench/disk.ts [--quick]` (part of `npm run bench`): data-directory bytes
 * per frame held, at 20 devices × 1 Hz (the `npm start` demo's rate: a commit group often holds
 * one frame), 1 000 devices × 1 Hz and saturation, each on a fresh store through the real
 * ingest pipeline (verify pool, replay memory, signed blocks, lmdb). Baseline: the frames' own
 * bytes. Also splits the file by lmdb database (pages in use) and free pages, and gives the
 * frame-to-durable p99 at each rate (the coalescing window must not push it past 20 ms), the
 * frames per frames block and the block overhead per frame (a frames block's bytes over its
 * frames' own). `--seal-after-ms 0,1000` compares a block per commit group (0, as before the
 * journal) with the journal's default window in one run; the journal is sealed before the
 * store is measured.
 *
 * Frames go straight to `IngestPipeline.submit` (the MQTT path adds nothing to the disk).
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startTestGateway, tempDir } from '../test/helpers/env.js';
import { testDevice } from '../test/helpers/devices.js';
import { DEFAULT_COALESCE_MS } from '../gateway/ingest/pipeline.js';
import { DEFAULT_SEAL_AFTER_MS } from '../gateway/log/journal.js';
import { decodeSignedBlock, encodeCanonical } from '../protocols/index.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    /** Phases whose names start with these (comma-separated): `20`, `1000`, `saturation`. */
    only: { type: 'string' },
    /** Coalescing windows to compare, ms, comma-separated; each phase runs once per value (0: commit at once, the earlier behaviour). Default 0 and the default window; `--quick` the default only. */
    'coalesce-ms': { type: 'string' },
    /** Journal seal windows to compare, ms, comma-separated (0: a block per commit group). Default: the config default. */
    'seal-after-ms': { type: 'string' },
    /** Seconds of the 1 Hz phases (default 30 and 10; `--quick` 5 and 2). */
    seconds: { type: 'string' },
  },
});
const quick = values.quick === true;

interface Phase {
  name: string;
  devices: number;
  /** Frames per second per device; 0 = closed loop (saturation). */
  hz: number;
  seconds: number;
  /** Saturation: frames per device. */
  frames?: number;
}

const phases: Phase[] = [
  { name: '20 devices x 1 Hz', devices: 20, hz: 1, seconds: quick ? 5 : 30 },
  { name: '1000 devices x 1 Hz', devices: 1000, hz: 1, seconds: quick ? 2 : 10 },
  { name: 'saturation', devices: 1000, hz: 0, seconds: 0, frames: quick ? 3 : 20 },
]
  .map((p) => (values.seconds !== undefined && p.hz > 0 ? { ...p, seconds: Number(values.seconds) } : p))
  .filter((p) => !values.only || values.only.split(',').some((o) => p.name.startsWith(o)));

interface DbStats {
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
  entryCount: number;
  pageSize: number;
  lastPageNumber: number;
}

const quantile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

async function run(p: Phase, coalesceMs: number, sealAfterMs: number) {
  const tmp = tempDir('outpost-disk-');
  const fleet = Array.from({ length: p.devices }, (_, i) => testDevice(`disk-${String(i).padStart(4, '0')}`));
  const { gw } = await startTestGateway(tmp.dir, [], { ingest: { coalesceMs }, log: { sealAfterMs } });
  // Concurrently: one transaction for all (config devices are enrolled one commit each).
  await Promise.all(fleet.map((d) => gw.registry.enroll({ id: d.id, publicKey: d.publicKeyHex })));
  const perDevice = p.hz > 0 ? Math.ceil(p.hz * p.seconds) : p.frames!;
  // Pre-signed, off the clock.
  const frames = fleet.map((d) => Array.from({ length: perDevice }, (_, s) => d.frame(1, s)));
  const frameBytes = frames.flat().reduce((n, f) => n + f.length, 0);
  gw.ingest.stats.takeLatencies();
  const outcomes: Promise<unknown>[] = [];
  const t0 = performance.now();
  if (p.hz > 0) {
    const period = 1000 / p.hz;
    await Promise.all(
      frames.map(
        (list) =>
          new Promise<void>((resolve) => {
            let i = 0;
            const tick = (): void => {
              const f = list[i++];
              if (!f) return resolve();
              outcomes.push(gw.ingest.submit(f, { transport: 'mqtt' }));
              setTimeout(tick, period);
            };
            setTimeout(tick, Math.random() * period);
          }),
      ),
    );
  } else {
    // Closed loop: four in flight per device.
    await Promise.all(
      frames.map(async (list) => {
        const lane = async (): Promise<void> => {
          for (let f = list.shift(); f; f = list.shift()) await gw.ingest.submit(f, { transport: 'mqtt' });
        };
        await Promise.all([lane(), lane(), lane(), lane()]);
      }),
    );
  }
  await Promise.all(outcomes);
  const seconds = (performance.now() - t0) / 1000;
  const lat = gw.ingest.stats.takeLatencies().sort((a, b) => a - b);
  // What the journal holds goes into blocks, as a stop would; then the store is measured.
  await gw.blockLog.sealOpen();
  let framesBlocks = 0;
  let inBlocks = 0;
  let overhead = 0;
  let fields = 0;
  for (const h of gw.blockLog.allHashes()) {
    const rec = gw.blockLog.lookup(h);
    if (rec?.kind !== 'frames') continue;
    const d = decodeSignedBlock(gw.blockLog.getEnvelope(h)!);
    if (!d.ok || d.value.block.kind !== 'frames') continue;
    framesBlocks++;
    inBlocks += rec.frames;
    // The block's header and signature (and body head) over its entries; each entry's own
    // wrapping (its rxTime and transport, CBOR heads) is the frame's metadata, counted apart.
    const entries = d.value.block.body.map((e) => encodeCanonical([e.frame, e.rxTime, e.transport]).length);
    const entryBytes = entries.reduce((n, x) => n + x, 0);
    overhead += d.value.envelope.length - entryBytes;
    fields += entryBytes - d.value.block.body.reduce((n, e) => n + e.frame.length, 0);
  }
  const held = gw.frames.count();
  const root = gw.store.root;
  const pages = (st: DbStats): number => st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages;
  const byDb: Record<string, { pages: number; entries: number }> = {};
  let inDbs = 0;
  for (const name of root.getKeys()) {
    if (typeof name !== 'string') continue;
    const st = root.openDB({ name }).getStats() as DbStats;
    byDb[name] = { pages: pages(st), entries: st.entryCount };
    inDbs += pages(st);
  }
  const rs = root.getStats() as DbStats & { root: DbStats; free: DbStats };
  const total = rs.lastPageNumber + 1;
  const blocks = byDb['log-index']?.entries ?? 0;
  // Two meta pages, the main tree (the databases' names) and the free list's own tree.
  const structure = 2 + pages(rs.root) + pages(rs.free);
  await gw.stop();
  const file = statSync(join(tmp.dir, 'outpost.lmdb'));
  tmp.cleanup();
  const free = total - inDbs - structure;
  return {
    phase: p,
    held,
    blocks,
    seconds,
    frameBytes,
    pageSize: rs.pageSize,
    pagesTotal: total,
    fileBytes: file.blocks * 512,
    byDb,
    free,
    structure,
    framesBlocks,
    overheadPerFrame: overhead / inBlocks,
    fieldsPerFrame: fields / inBlocks,
    framesPerBlock: inBlocks / framesBlocks,
    p99: quantile(lat, 0.99),
  };
}

async function main(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  // `--quick` (in the report's 60 s budget) measures the default window only.
  const windows = (values['coalesce-ms'] ?? (quick ? `${DEFAULT_COALESCE_MS}` : `0,${DEFAULT_COALESCE_MS}`))
    .split(',')
    .map(Number);
  const seals = (values['seal-after-ms'] ?? `${DEFAULT_SEAL_AFTER_MS}`).split(',').map(Number);
  for (const p of phases)
    for (const w of windows)
      for (const sa of seals) {
        const r = await run(p, w, sa);
        const tag = `coalesce ${w} ms, seal ${sa} ms`;
        const perFrame = (r.pagesTotal * r.pageSize) / r.held;
        const framePer = r.frameBytes / r.held;
        console.log(
          `\n${p.name}, ${tag}: ${r.held} frames in ${r.framesBlocks} frames blocks (${r.framesPerBlock.toFixed(1)} per block; ${r.blocks} blocks in all), ` +
            `block header+signature ${r.overheadPerFrame.toFixed(1)} B/frame (${(r.overheadPerFrame / (r.frameBytes / r.held)).toFixed(3)}x) + entry fields ${r.fieldsPerFrame.toFixed(1)} B/frame, ${r.seconds.toFixed(1)} s, ` +
            `frame ${framePer.toFixed(0)} B; pages in use ${((r.pagesTotal * r.pageSize) / 1e6).toFixed(2)} MB = ${perFrame.toFixed(0)} B/frame ` +
            `(${(perFrame / framePer).toFixed(1)}x); file on disk ${(r.fileBytes / 1e6).toFixed(2)} MB; frame-to-durable p99 ${r.p99.toFixed(1)} ms`,
        );
        for (const [name, s] of Object.entries(r.byDb))
          console.log(
            `  ${name.padEnd(15)} ${String(s.pages).padStart(6)} pages ${((s.pages * r.pageSize) / r.held).toFixed(0).padStart(6)} B/frame  ${s.entries} entries`,
          );
        console.log(
          `  ${'free pages'.padEnd(15)} ${String(r.free).padStart(6)} pages ${((r.free * r.pageSize) / r.held).toFixed(0).padStart(6)} B/frame\n` +
            `  ${'meta, main, free-list trees'.padEnd(15)} ${String(r.structure).padStart(6)} pages`,
        );
        rows.push(
          {
            figure: `data-directory bytes per frame, ${p.name}, ${tag}`,
            value: perFrame,
            unit: 'B',
            baseline: 'frame bytes',
            baselineValue: framePer,
            ratio: perFrame / framePer,
            goal: '<= 3x',
            pass: perFrame / framePer <= 3,
          },
          { figure: `frames per frames block, ${p.name}, ${tag}`, value: r.framesPerBlock, unit: 'frames' },
          {
            figure: `block header and signature per frame, ${p.name}, ${tag}`,
            value: r.overheadPerFrame,
            unit: 'B',
            baseline: 'frame bytes',
            baselineValue: framePer,
            ratio: r.overheadPerFrame / framePer,
            goal: '<= 0.1x',
            pass: r.overheadPerFrame / framePer <= 0.1,
          },
          {
            figure: `frame-to-durable p99, ${p.name}, ${tag}`,
            value: r.p99,
            unit: 'ms',
            goal: '<= 20 ms',
            pass: r.p99 <= 20,
          },
        );
      }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/disk.json', import.meta.url),
    JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2) + '\n',
  );
}

await main();
