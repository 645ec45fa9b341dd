/**
 * The data directory's format (`log-meta` 'schema') and its upgrade at start
 * (gateway/log/README.md, "Upgrading a data directory").
 *
 *   1 (no 'schema' key)  frames kept twice: verbatim in the Store (`frames`, `frames-by-device`,
 *                        `frames-by-time`, `frames-dedupe`) and in their blocks; the view's value
 *                        [hash, index]
 *   2                    frames once, in their blocks; the view's value [hash, index, rxTime] and
 *                        the time indexes of frames-index.ts
 *   3                    and `log-kinds`: every block but frames blocks by kind, so a start finds
 *                        its key-wrap, rule, firmware and actuation blocks without walking the
 *                        index of every block (from 2: that table built, then the schema)
 *
 * The upgrade from 1 is crash-safe by being a sequence of idempotent steps with the schema
 * written last: (a) copies rebuilt if a store predates them; (b) a Store frame no block holds
 * (a store older than the block log) is logged in a frames block; (c) the view and the time
 * indexes are rebuilt from the copies, in bounded transactions, after clearing what a cut-short
 * run left; (d) the Store's frame tables are cleared, then the schema is set. Killed anywhere,
 * the next start runs it again: (b) finds the frames it logged already held, (c) starts over,
 * and (d) runs only once every frame is in a durable block.
 */
import type { Database, RootDatabase } from 'lmdb';
import { decodeSignedBlock, type FrameEntry } from '../../protocols/index.js';
import type { Logger } from '../logger.js';
import type { LogState } from './state.js';

/** The format this release writes. */
export const SCHEMA_VERSION = 3;
/** The format from which `log-kinds` is kept. */
export const KINDS_SINCE = 3;
const SCHEMA_KEY = 'schema';
/** Frames per upgrade transaction (bounded, so a large store does not build one huge commit). */
const UPGRADE_CHUNK = 20_000;

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
  readonly copiesRebuilt: number;
  readonly framesLogged: number;
  readonly framesIndexed: number;
  readonly storeFramesRemoved: number;
  /** Blocks other than frames blocks entered in `log-kinds`. */
  readonly blocksByKind: number;
  readonly ms: number;
}

/** Upgrades a directory of format `from` (1 or 2) in place. */
export async function upgrade(
  from: number,
  s: LogState,
  logFrames: (frames: FrameEntry[]) => void,
  log?: Logger,
): Promise<UpgradeReport> {
  if (from === 1) return upgradeFrom1(s, logFrames, log);
  const t0 = performance.now();
  log?.info(`upgrading the data directory from format ${from} to ${SCHEMA_VERSION} (blocks indexed by kind)`);
  const blocksByKind = await indexKinds(s);
  markFresh(s);
  await s.store.durable();
  const report = { from, copiesRebuilt: 0, framesLogged: 0, framesIndexed: 0, storeFramesRemoved: 0, blocksByKind };
  log?.info(
    { ...report, ms: Math.round(performance.now() - t0) },
    `data directory upgraded to format ${SCHEMA_VERSION}: ${blocksByKind} blocks indexed by kind`,
  );
  return { ...report, ms: Math.round(performance.now() - t0) };
}

/** Fills `log-kinds` from `log-index` (idempotent puts, so a run cut short is simply run again). */
async function indexKinds(s: LogState): Promise<number> {
  let n = 0;
  for (const { key, value } of s.index.getRange()) {
    if (value.kind === 'frames') continue;
    s.store.track(s.kinds.put([value.kind, key], 1));
    if (++n % UPGRADE_CHUNK === 0) await s.store.durable();
  }
  return n;
}

/** The old Store frame table's record (schema 1). */
interface LegacyFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  readonly rxTime: number;
  readonly transport: string;
  readonly frame: Uint8Array;
}

const LEGACY_TABLES = ['frames', 'frames-by-device', 'frames-by-time', 'frames-dedupe'] as const;

/**
 * Upgrades a schema-1 directory in place. `logFrames` logs frames no block holds (as ingest
 * would, on the default policy).
 */
async function upgradeFrom1(
  s: LogState,
  logFrames: (frames: FrameEntry[]) => void,
  log?: Logger,
): Promise<UpgradeReport> {
  const t0 = performance.now();
  const root = s.store.root;
  log?.info(
    `upgrading the data directory from format 1 (frames stored twice) to ${SCHEMA_VERSION} (frames once, in blocks)`,
  );
  // (a) copies, for a store older than them.
  let copiesRebuilt = 0;
  if (s.view.copiesEmpty()) {
    for (const { hash, frames } of readableFrameBlocks(s)) {
      copiesRebuilt += s.view.putCopies(hash, frames);
      if (copiesRebuilt >= UPGRADE_CHUNK) await s.store.durable();
    }
    await s.store.durable();
    log?.info({ step: 'copies', frames: copiesRebuilt }, `upgrade: copies of ${copiesRebuilt} frames rebuilt`);
  }
  // (b) Store frames no block holds: logged now, so nothing is lost when the table goes.
  const legacy: Database<LegacyFrame, number> = root.openDB({ name: 'frames' });
  let framesLogged = 0;
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
  log?.info({ step: 'unlogged', frames: framesLogged }, `upgrade: ${framesLogged} stored frames with no block logged`);
  // (c) the view and its time indexes, from the copies.
  await s.view.clearAll();
  let framesIndexed = 0;
  for (let from: unknown[] | undefined = []; from !== undefined; ) {
    const step = s.view.rebuildFromCopies(from, UPGRADE_CHUNK);
    framesIndexed += step.entries;
    from = step.next;
    await s.store.durable();
    log?.info({ step: 'index', frames: framesIndexed }, `upgrade: ${framesIndexed} frames indexed`);
  }
  // (d) the second copy goes; blocks are indexed by kind (format 3); then the schema says so.
  const storeFramesRemoved = (legacy.getStats() as { entryCount: number }).entryCount;
  for (const name of LEGACY_TABLES) await root.openDB({ name }).clearAsync();
  const blocksByKind = await indexKinds(s);
  markFresh(s);
  await s.store.durable();
  const report = {
    from: 1,
    copiesRebuilt,
    framesLogged,
    framesIndexed,
    storeFramesRemoved,
    blocksByKind,
    ms: Math.round(performance.now() - t0),
  };
  log?.info(
    report,
    `data directory upgraded to format ${SCHEMA_VERSION}: ${framesIndexed} frames indexed in their blocks, ` +
      `${framesLogged} logged into new blocks, the store's second copy of ${storeFramesRemoved} frames removed`,
  );
  return report;
}

function* readableFrameBlocks(s: LogState): Generator<{ hash: string; frames: readonly FrameEntry[] }> {
  for (const { key, value } of s.index.getRange()) {
    if (value.kind !== 'frames' && value.kind !== 'sealed') continue;
    const d = decodeSignedBlock(s.getEnvelope(key) ?? new Uint8Array());
    const b = d.ok ? s.readable(d.value.block) : undefined;
    if (b?.kind === 'frames') yield { hash: key, frames: b.body };
  }
}
