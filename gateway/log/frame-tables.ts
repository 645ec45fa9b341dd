/**
 * The frames view's four lmdb tables (data format 4; keys and values in frame-keys.ts):
 *
 *   log-frame-view    [dev, boot, seq] → [block, index, rxTime]   the chosen copy
 *   log-frame-copies  [dev, boot, seq, block, index] → rxTime     the other copies
 *   log-frame-time    [rxTime, dev, boot, seq] → [block, index]   time index
 *   log-frame-device  [dev, rxTime, boot, seq] → [block, index]   per-device time index
 *
 * The copies of a frame held are the view entry's copy and the copies table's entries for
 * it (the view's copy may be listed there too). A frame held in one copy and shown, the
 * common case, has no copies entry: one is written when a second copy arrives, or when the
 * shown copy leaves the view but stays held (a revocation hides it, a lesser copy wins).
 * Written by the view (view.ts), read by every reader (frames-index.ts, the export source).
 */
import type { Database, RootDatabase } from 'lmdb';
import {
  after,
  COPY_KEY,
  full,
  type CopyRef,
  copyKey,
  deviceKey,
  type FrameKey,
  framePrefix,
  type Pointer,
  pointer,
  readCopyKey,
  readCopyValue,
  readTimeValue,
  TIME_KEY,
  type TimeKey,
  timeKey,
  timeValue,
  VIEW_KEY,
  viewKey,
} from './frame-keys.js';

type Bin = Database<Buffer, Buffer>;
const LEAST_COPY_KEY = Buffer.alloc(COPY_KEY);
const binary = { keyEncoding: 'binary', encoding: 'binary' } as const;

export class FrameTables {
  // Scratch keys for single puts, gets and removes: lmdb-js copies a key when it is given, so
  // one buffer per shape serves every call (values it reads at commit: those stay fresh).
  private readonly viewScratch = Buffer.allocUnsafe(VIEW_KEY);
  private readonly timeScratch = Buffer.allocUnsafe(TIME_KEY);
  private readonly deviceScratch = Buffer.allocUnsafe(TIME_KEY);
  private readonly copyScratch = Buffer.allocUnsafe(COPY_KEY);
  readonly view: Bin;
  readonly copies: Bin;
  readonly byTime: Bin;
  readonly byDevice: Bin;

  constructor(root: RootDatabase) {
    this.view = root.openDB({ name: 'log-frame-view', ...binary });
    this.copies = root.openDB({ name: 'log-frame-copies', ...binary });
    this.byTime = root.openDB({ name: 'log-frame-time', ...binary });
    this.byDevice = root.openDB({ name: 'log-frame-device', ...binary });
  }

  /** The chosen copy of a frame (committed). */
  entry(k: FrameKey): CopyRef | undefined {
    const v = this.view.get(viewKey(k.dev, k.boot, k.seq, this.viewScratch));
    return v === undefined ? undefined : readCopyValue(v);
  }

  /** Every copy held of a frame (committed): the view's and the copies table's, each once. */
  copiesOf(k: FrameKey, shown: CopyRef | undefined = this.entry(k)): CopyRef[] {
    const out: CopyRef[] = shown ? [shown] : [];
    const p = framePrefix(k.dev, k.boot, k.seq);
    for (const { key, value } of this.copies.getRange({ start: full(p, COPY_KEY), end: after(p, COPY_KEY) })) {
      const c = readCopyKey(key);
      const rxTime = readTimeValue(value);
      if (!c || rxTime === undefined) continue;
      if (shown && c.block === shown.block && c.index === shown.index) continue;
      out.push({ block: c.block, index: c.index, rxTime });
    }
    return out;
  }

  /** Whether a frame has a copies entry: without one it is held in one copy at most, the view's. */
  copied(k: FrameKey): boolean {
    // The frame's copy keys run from (block 0, index 0) to below (block 2^32 − 1, index 2^16 − 1),
    // past any block number a store reaches: whole keys, without the padding `full` / `after` allocate.
    const start = copyKey(k, 0, 0);
    const end = copyKey(k, 0xffffffff, 0xffff);
    for (const _ of this.copies.getKeys({ start, end, limit: 1 })) return true;
    return false;
  }

  /** Whether the copies table holds any entry (committed): when not, no frame is `copied`. */
  anyCopies(): boolean {
    // One seek from the least whole key (getStats would walk lmdb's free list too).
    for (const _ of this.copies.getKeys({ start: LEAST_COPY_KEY, limit: 1 })) return true;
    return false;
  }

  /**
   * The seqs in [lo, hi] of one (dev, boot) that have a copies entry: one range read for a
   * batch's frames of one device (the export).
   */
  copiedSeqs(dev: number, boot: number, lo: number, hi: number): Set<number> {
    const out = new Set<number>();
    const start = full(framePrefix(dev, boot, lo), COPY_KEY);
    const end = after(framePrefix(dev, boot, hi), COPY_KEY);
    for (const key of this.copies.getKeys({ start, end })) if (key.length === COPY_KEY) out.add(key.readUInt32BE(8));
    return out;
  }

  /** Whether any committed copy of a frame is held. */
  holds(k: FrameKey): boolean {
    return this.view.doesExist(viewKey(k.dev, k.boot, k.seq, this.viewScratch)) || this.copied(k);
  }

  /** Queues the time-index entries of a view entry. */
  putIndex(k: TimeKey, p: Pointer): Promise<unknown>[] {
    const v = pointer(p);
    return [this.byTime.put(timeKey(k, this.timeScratch), v), this.byDevice.put(deviceKey(k, this.deviceScratch), v)];
  }

  removeIndex(k: TimeKey): Promise<unknown>[] {
    return [this.byTime.remove(timeKey(k, this.timeScratch)), this.byDevice.remove(deviceKey(k, this.deviceScratch))];
  }

  putCopy(k: FrameKey, c: CopyRef): Promise<unknown> {
    return this.copies.put(copyKey(k, c.block, c.index, this.copyScratch), timeValue(c.rxTime));
  }

  removeCopy(k: FrameKey, block: number, index: number): Promise<unknown> {
    return this.copies.remove(copyKey(k, block, index, this.copyScratch));
  }

  /** Queues a view entry (null: removes it). */
  setEntry(k: FrameKey, v: Buffer | null): Promise<unknown> {
    const key = viewKey(k.dev, k.boot, k.seq, this.viewScratch);
    return v === null ? this.view.remove(key) : this.view.put(key, v);
  }

  /** Entries in the view (O(1), the table's own count). */
  count(): number {
    return (this.view.getStats() as { entryCount: number }).entryCount;
  }

  async clear(): Promise<void> {
    for (const db of [this.view, this.copies, this.byTime, this.byDevice]) await db.clearAsync();
  }
}
