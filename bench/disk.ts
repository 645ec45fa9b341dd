/**
 * `node --import tsx bench/disk.ts [--quick]` (part of `npm run bench`): data-directory bytes
 * per frame held, at 20 devices × 1 Hz (the `npm start` demo's rate: a commit group often holds
 * one frame), 1 000 devices × 1 Hz and saturation, each on a fresh store through the real
 * ingest pipeline (verify pool, replay memory, signed blocks, lmdb). Baseline: the frames' own
 * bytes. Also the growth from a third of the way into a run to its end per frame acked
 * meanwhile: what each further frame costs once the start's fixed costs are paid (a device's
 * enrolment blocks, replay window and rollup rows, which a short run divides by few frames);
 * that is the rate a card fills at. Splits the file by lmdb database (pages in use) and free pages, and gives the
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
import type { RootDatabase } from 'lmdb';
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
    /** Seconds of the 1 Hz phases (default 90 and 30; `--quick` 5 and 2). */
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
  { name: '20 devices x 1 Hz', devices: 20, hz: 1, seconds: quick ? 5 : 90 },
  { name: '1000 devices x 1 Hz', devices: 1000, hz: 1, seconds: quick ? 2 : 30 },
  { name: 'saturation', devices: 1000, hz: 0, seconds: 0, frames: quick ? 3 : 60 },
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

interface Usage {
  byDb: Record<string, { pages: number; entries: number }>;
  /** Pages in the databases' trees. */
  inDbs: number;
  /** The file's high-water mark, pages. */
  total: number;
  /** Two meta pages, the main tree (the databases' names) and the free list's own tree. */
  structure: number;
  pageSize: number;
}

/** The file's pages split by database; the rest of the high-water mark is free pages. */
function usage(root: RootDatabase): Usage {
  const pages = (st: DbStats): number => st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages;
  const byDb: Usage['byDb'] = {};
  let inDbs = 0;
  for (const name of root.getKeys()) {
    if (typeof name !== 'string') continue;
    const st = root.openDB({ name }).getStats() as DbStats;
    byDb[name] = { pages: pages(st), entries: st.entryCount };
    inDbs += pages(st);
  }
  const rs = root.getStats() as DbStats & { root: DbStats; free: DbStats };
  const structure = 2 + pages(rs.root) + pages(rs.free);
  return { byDb, inDbs, total: rs.lastPageNumber + 1, structure, pageSize: rs.pageSize };
}

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
  // Steady state: the file's high-water mark and the frames acked a third of the way in, so the
  // growth from there on is what each further frame costs, without the start's fixed costs (a
  // device's enrolment, replay window, rollup rows) that a short run divides by few frames.
  let acked = 0;
  let mark: { use: Usage; acked: number } | undefined;
  const third = Math.floor((p.devices * perDevice) / 3);
  const marked =
    p.hz > 0
      ? new Promise<void>((resolve) =>
          setTimeout(
            () => {
              mark = { use: usage(gw.store.root), acked };
              resolve();
            },
            (p.seconds * 1000) / 3,
          ),
        )
      : Promise.resolve();
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
              outcomes.push(gw.ingest.submit(f, { transport: 'mqtt' }).then(() => acked++));
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
          for (let f = list.shift(); f; f = list.shift()) {
            await gw.ingest.submit(f, { transport: 'mqtt' });
            if (++acked === third) mark = { use: usage(gw.store.root), acked };
          }
        };
        await Promise.all([lane(), lane(), lane(), lane()]);
      }),
    );
  }
  await Promise.all(outcomes);
  await marked;
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
  const end = usage(gw.store.root);
  const { byDb, inDbs, total, structure, pageSize } = end;
  const blocks = byDb['log-index']?.entries ?? 0;
  await gw.stop();
  const file = statSync(join(tmp.dir, 'outpost.lmdb'));
  tmp.cleanup();
  const free = total - inDbs - structure;
  const growth = (a: number, b: number): number => ((b - a) * pageSize) / (acked - mark!.acked);
  return {
    phase: p,
    held,
    blocks,
    seconds,
    frameBytes,
    pageSize,
    pagesTotal: total,
    fileBytes: file.blocks * 512,
    byDb,
    free,
    structure,
    framesBlocks,
    overheadPerFrame: overhead / inBlocks,
    fieldsPerFrame: fields / inBlocks,
    framesPerBlock: inBlocks / framesBlocks,
    growth: mark && {
      file: growth(mark.use.total, total),
      free: growth(mark.use.total - mark.use.inDbs, total - inDbs),
      byDb: Object.fromEntries(
        Object.entries(byDb).map(([name, d]) => [name, growth(mark!.use.byDb[name]?.pages ?? 0, d.pages)]),
      ),
    },
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
        const g = r.growth;
        if (g)
          console.log(
            `  growth from a third of the way in to the end: ${g.file.toFixed(0)} B/frame (${(g.file / framePer).toFixed(2)}x the frame)`,
          );
        const col = (bytes: number | undefined): string =>
          bytes === undefined ? '' : `  growth ${bytes.toFixed(0).padStart(5)} B/frame`;
        for (const [name, s] of Object.entries(r.byDb))
          console.log(
            `  ${name.padEnd(15)} ${String(s.pages).padStart(6)} pages ${((s.pages * r.pageSize) / r.held).toFixed(0).padStart(6)} B/frame  ${String(s.entries).padEnd(8)}entries${col(g?.byDb[name])}`,
          );
        console.log(
          `  ${'free pages'.padEnd(15)} ${String(r.free).padStart(6)} pages ${((r.free * r.pageSize) / r.held).toFixed(0).padStart(6)} B/frame          ${col(g?.free)}\n` +
            `  ${'meta, main, free-list trees'.padEnd(15)} ${String(r.structure).padStart(6)} pages`,
        );
        // Bytes a frame against the frame's own, judged against `goal` (× the frame) when given.
        const perFrameRow = (figure: string, value: number, goal?: number): Record<string, unknown> => ({
          figure: `${figure}, ${p.name}, ${tag}`,
          value,
          unit: 'B',
          baseline: 'frame bytes',
          baselineValue: framePer,
          ratio: value / framePer,
          ...(goal !== undefined && { goal: `<= ${goal}x`, pass: value / framePer <= goal }),
        });
        rows.push(
          // Held, the start's fixed costs included: it falls as a run grows, so it is not judged.
          perFrameRow('data-directory bytes per frame held', perFrame),
          // A `--quick` run is too short for a steady state: its growth is printed, not judged.
          ...(g && !quick
            ? [perFrameRow("data-directory growth per frame, the run's last two thirds", g.file, 3)]
            : []),
          { figure: `frames per frames block, ${p.name}, ${tag}`, value: r.framesPerBlock, unit: 'frames' },
          perFrameRow('block header and signature per frame', r.overheadPerFrame, 0.1),
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
