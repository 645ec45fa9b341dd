/**
 * The data directory's format (`log-meta` 'schema') and its upgrade at start
 * (gateway/log/README.md, "Upgrading a data directory").
 *
 *   1 (no 'schema' key)  frames kept twice: verbatim in the Store (`frames`, `frames-by-device`,
 *                        `frames-by-time`, `frames-dedupe`) and in their blocks
 *   2                    frames once, in their blocks; the view (`log-view`, `log-copies`) and
 *                        its time indexes (`log-by-time`, `log-by-device`) keyed by device id
 *                        strings and hex block hashes, a copies entry for every copy
 *   3                    and `log-kinds`: every block but frames blocks by kind
 *   4                    the view and its time indexes in binary keys with short device and
 *                        block numbers (`log-frame-*`, numbers.ts, frame-keys.ts), a copies
 *                        entry only where a frame has a second copy or a hidden one
 *
 * The upgrade is a sequence of idempotent steps with the schema written last, so a start
 * killed anywhere (SIGKILL) runs it again from the top: (a) the format-4 tables and numbers
 * are cleared (what a cut-short run left); (b) every block is numbered and every frames
 * block's frames entered in the view, from the blocks themselves (the only copy of a frame),
 * in bounded transactions; (c) from 1, a Store frame no block holds (a store older than the
 * block log) is logged in a frames block — checked against the view, so never twice, and a
 * later run's (b) finds that block; (d) the format-3 view tables and the Store's frame tables
 * are dropped, `log-kinds` filled, then the schema set.
 */
import type { Database, RootDatabase } from 'lmdb';
import { decodeSignedBlock, type FrameEntry } from '../../protocols/index.js';
import type { Logger } from '../logger.js';
import { BLOCK_NO_KEY } from './numbers.js';
import type { IndexRecord, LogState } from './state.js';
import { FramesView } from './view.js';

/** The format this release writes. */
export const SCHEMA_VERSION = 4;
/** The format from which `log-kinds` is kept. */
export const KINDS_SINCE = 3;
const SCHEMA_KEY = 'schema';
/**
 * Frames per upgrade transaction (bounded, so a large store does not build one huge commit);
 * `OUTPOST_UPGRADE_CHUNK` sets it smaller, so a test can SIGKILL an upgrade between two.
 */
const UPGRADE_CHUNK = Number(process.env.OUTPOST_UPGRADE_CHUNK) || 20_000;

export class DataDirError extends Error {
  constructor(
    readonly code: 'data-dir/newer' | 'data-dir/older',
    message: string,
  ) {
    super(message);
    this.name = 'DataDirError';
  }
}

/** The schema of a data directory's log (1 when unmarked and not empty, undefined when fresh). */
export function schemaOf(root: RootDatabase): number | undefined {
  const meta: Database<number, string> = root.openDB({ name: 'log-meta' });
  const v = meta.get(SCHEMA_KEY);
  if (v !== undefined) return v;
  const blocks = root.openDB({ name: 'log-blocks', encoding: 'binary' });
  for (const _ of blocks.getKeys({ limit: 1 })) return 1;
  for (const _ of root.openDB({ name: 'frames' }).getKeys({ limit: 1 })) return 1;
  return undefined;
}

/** Refuses a data directory written by a newer release (its format may mean anything). */
export function refuseNewer(schema: number | undefined, dir: string): void {
  if (schema !== undefined && schema > SCHEMA_VERSION)
    throw new DataDirError(
      'data-dir/newer',
      `${dir} was written by a newer release (data format ${schema}; this release reads up to ${SCHEMA_VERSION}): ` +
        'run that release or newer, or start this one on another data directory',
    );
}

/** For readers that do not upgrade (the CLI): an older directory must be started once first. */
export function requireCurrent(root: RootDatabase, dir: string): void {
  const schema = schemaOf(root);
  refuseNewer(schema, dir);
  if (schema !== undefined && schema < SCHEMA_VERSION)
    throw new DataDirError(
      'data-dir/older',
      `${dir} was written by an earlier release (data format ${schema}): start the gateway once on it (it upgrades the data directory at start), then run this again`,
    );
}

/** Marks a fresh directory with the current schema (queued in the current transaction). */
export function markFresh(s: LogState): void {
  s.store.track(s.meta.put(SCHEMA_KEY, SCHEMA_VERSION));
}

export interface UpgradeReport {
  readonly from: number;
  /** Blocks given a number (every block held). */
  readonly blocksNumbered: number;
  readonly framesLogged: number;
  /** Frames entered in the view (distinct frames shown). */
  readonly framesIndexed: number;
  readonly storeFramesRemoved: number;
  /** Blocks other than frames blocks entered in `log-kinds`. */
  readonly blocksByKind: number;
  readonly ms: number;
}

/** Format-3 tables of the view, replaced by frame-tables.ts's. */
const OLD_VIEW_TABLES = ['log-view', 'log-copies', 'log-by-time', 'log-by-device'] as const;
const LEGACY_TABLES = ['frames', 'frames-by-device', 'frames-by-time', 'frames-dedupe'] as const;

/** The old Store frame table's record (schema 1). */
interface LegacyFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  readonly rxTime: number;
  readonly transport: string;
  readonly frame: Uint8Array;
}

/**
 * Upgrades a directory of format `from` (1, 2 or 3) in place. `logFrames` logs frames no
 * block holds (as ingest would, on the default policy).
 */
export async function upgrade(
  from: number,
  s: LogState,
  logFrames: (frames: FrameEntry[]) => void,
  log?: Logger,
): Promise<UpgradeReport> {
  const t0 = performance.now();
  const root = s.store.root;
  log?.info(
    `upgrading the data directory from format ${from} to ${SCHEMA_VERSION} (the frames index in short binary keys${from === 1 ? ', frames once, in blocks' : ''})`,
  );
  // (a) start over.
  await s.view.tables.clear();
  await s.blockNos.clear();
  await s.meta.remove(BLOCK_NO_KEY);
  s.resetBlockNos();
  await s.view.devices.reset();
  // (b) every block numbered, every frame in the view, from the blocks.
  let blocksNumbered = 0;
  let frames = 0;
  let ticket = FramesView.ticket();
  const land = async (): Promise<void> => {
    await s.store.durable();
    s.view.settle(ticket);
    s.pendingBlockNos.clear();
    ticket = FramesView.ticket();
  };
  await eachIndexed(
    s,
    (hash, rec) => {
      const no = s.assignBlockNo(hash);
      s.store.track(s.index.put(hash, { ...rec, no }));
      blocksNumbered++;
      if (rec.kind !== 'frames' && rec.kind !== 'sealed') return 1;
      const d = decodeSignedBlock(s.getEnvelope(hash) ?? new Uint8Array());
      const b = d.ok ? s.readable(d.value.block) : undefined;
      if (b?.kind !== 'frames') return 1;
      s.view.add(ticket, no, b.body);
      frames += b.body.length;
      return 1 + b.body.length;
    },
    async (more) => {
      await land();
      if (more)
        log?.info({ step: 'index', frames }, `upgrade: ${blocksNumbered} blocks numbered, their frames indexed`);
    },
  );
  const framesIndexed = s.view.count();
  log?.info({ step: 'index', frames: framesIndexed }, `upgrade: ${framesIndexed} frames indexed`);
  // (c) Store frames no block holds: logged now, so nothing is lost when the table goes.
  let framesLogged = 0;
  let storeFramesRemoved = 0;
  if (from === 1) {
    const legacy: Database<LegacyFrame, number> = root.openDB({ name: 'frames' });
    let batch: FrameEntry[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      logFrames(batch);
      framesLogged += batch.length;
      batch = [];
      await s.store.durable();
    };
    for (const { value: f } of legacy.getRange()) {
      if (s.view.holds(f.device, f.boot, f.seq)) continue;
      batch.push({ frame: new Uint8Array(f.frame), rxTime: f.rxTime, transport: f.transport });
      if (batch.length === 256) await flush();
    }
    await flush();
    log?.info(
      { step: 'unlogged', frames: framesLogged },
      `upgrade: ${framesLogged} stored frames with no block logged`,
    );
    storeFramesRemoved = (legacy.getStats() as { entryCount: number }).entryCount;
  }
  // (d) the old tables go; blocks are indexed by kind (format 3); then the schema says so.
  for (const name of [...OLD_VIEW_TABLES, ...(from === 1 ? LEGACY_TABLES : [])]) await root.openDB({ name }).drop();
  const blocksByKind = from < KINDS_SINCE ? await indexKinds(s) : 0;
  markFresh(s);
  await s.store.durable();
  const report = {
    from,
    blocksNumbered,
    framesLogged,
    framesIndexed: s.view.count(),
    storeFramesRemoved,
    blocksByKind,
    ms: Math.round(performance.now() - t0),
  };
  log?.info(
    report,
    `data directory upgraded to format ${SCHEMA_VERSION}: ${blocksNumbered} blocks numbered, ${report.framesIndexed} frames indexed in their blocks` +
      (from === 1
        ? `, ${framesLogged} logged into new blocks, the store's second copy of ${storeFramesRemoved} frames removed`
        : '') +
      (from < KINDS_SINCE ? `, ${blocksByKind} blocks indexed by kind` : ''),
  );
  return report;
}

/** Fills `log-kinds` from `log-index` (idempotent puts, so a run cut short is simply run again). */
async function indexKinds(s: LogState): Promise<number> {
  let n = 0;
  await eachIndexed(
    s,
    (key, value) => {
      if (value.kind === 'frames') return 1;
      s.store.track(s.kinds.put([value.kind, key], 1));
      n++;
      return 1;
    },
    () => s.store.durable(),
  );
  return n;
}

/**
 * Visits `log-index` in key order, about UPGRADE_CHUNK of `visit`'s weight at a time, calling
 * `commit` after each (`more`: not the last). The range is opened again after each commit, so
 * no read snapshot outlives one: lmdb cannot reuse the pages a snapshot still sees, and one
 * range held over a whole upgrade of 1M frames grew the file from 1.1 to 3.5 GB.
 */
async function eachIndexed(
  s: LogState,
  visit: (hash: string, rec: IndexRecord) => number,
  commit: (more: boolean) => Promise<void>,
): Promise<void> {
  let from: string | undefined;
  for (;;) {
    let weight = 0;
    let last: string | undefined;
    for (const { key, value } of s.index.getRange(from === undefined ? {} : { start: from })) {
      if (key === from) continue;
      last = key;
      weight += visit(key, value);
      if (weight >= UPGRADE_CHUNK) break;
    }
    const more = last !== undefined && weight >= UPGRADE_CHUNK;
    await commit(more);
    if (!more) return;
    from = last;
  }
}
