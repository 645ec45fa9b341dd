/**
 * The frames view across authors, kept as two lmdb databases:
 *
 *   log-copies  [device, boot, seq, block hash, index] → rxTime   every copy held
 *   log-view    [device, boot, seq] → [block hash, index, rxTime] the chosen copy
 *
 * and, for each entry, the time indexes of frames-index.ts (written in the same turn, so a
 * reader never sees an entry without its index keys or the other way round).
 *
 * The chosen copy is the least (hash, index) among the copies held that are not
 * excluded (received at or after the device's logged revocation), so the view is a
 * function of the blocks held and every replica chooses the same. Copies are kept
 * (not just the winner) because retention prunes blocks: the view must fall back to
 * another author's copy, or drop the entry, exactly as a replica that never held the
 * pruned block would have it.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { FrameEntry } from '../../protocols/index.js';
import { FrameIndexTables } from './frames-index.js';
import { frameId } from './verify.js';

export interface ViewEntry {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /** The block holding the chosen copy (the least (hash, index) among all copies, so every replica chooses the same). */
  readonly block: string;
  readonly index: number;
  /** The chosen copy's receive time. */
  readonly rxTime: number;
}

/** A frame newly in the view (no copy of it was shown before), once its block is durable. */
export interface AddedFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  readonly block: string;
  readonly index: number;
}

type CopyKey = [string, number, number, string, number];
type FrameKey = [string, number, number];
/** A copy: [hash, index, rxTime] (pending copies, and the view's value). */
type Copy = [string, number, number];

const fk = (d: string, b: number, s: number): string => `${d}\u0000${b}\u0000${s}`;
const parseFk = (k: string): FrameKey => {
  const [d, b, s] = k.split('\u0000');
  return [d!, Number(b), Number(s)];
};
const less = (a: [string, number], b: [string, number]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/** What one turn queued, to be forgotten once its transaction settles. */
export interface ViewTicket {
  readonly copies: [string, string][];
  readonly views: [string, { v: Copy | null }][];
  /** Frames that entered the view in this turn (no copy was shown before). */
  readonly added: AddedFrame[];
}

export class FramesView {
  private readonly copies: Database<number, CopyKey>;
  private readonly view: Database<Copy, FrameKey>;
  readonly index: FrameIndexTables;
  /** Queued view changes (v null: entry removed), until their transaction lands; compared by reference. */
  private readonly pendingView = new Map<string, { v: Copy | null }>();
  private readonly pendingCopies = new Map<string, Copy[]>();
  /** Copies deleted in the current prune turn (reads still see them until it commits). */
  private readonly removed = new Set<string>();

  constructor(
    root: RootDatabase,
    private readonly track: (p: Promise<unknown>) => void,
    /** Receive time from which a device's copies are excluded (its logged revocation), if any. */
    private readonly excludedSince: (device: string) => number | undefined,
  ) {
    this.copies = root.openDB({ name: 'log-copies' });
    this.view = root.openDB({ name: 'log-view' });
    this.index = new FrameIndexTables(root);
  }

  /** No copy is held (a store written before copies existed, or an empty one). */
  copiesEmpty(): boolean {
    for (const _ of this.copies.getKeys({ limit: 1 })) return false;
    return true;
  }

  private current(k: string, key: FrameKey): Copy | undefined {
    const p = this.pendingView.get(k);
    if (p !== undefined) return p.v ?? undefined;
    return this.view.get(key);
  }

  /** Changes one entry (null: removes it) with its time-index keys. */
  private set(t: ViewTicket, k: string, key: FrameKey, v: Copy | null): void {
    const cur = this.current(k, key);
    const ref = { v };
    this.pendingView.set(k, ref);
    t.views.push([k, ref]);
    if (cur !== undefined) for (const p of this.index.remove(...key, cur[2])) this.track(p);
    else if (v !== null) t.added.push({ device: key[0], boot: key[1], seq: key[2], block: v[0], index: v[1] });
    this.track(v === null ? this.view.remove(key) : this.view.put(key, v));
    if (v !== null) for (const p of this.index.put(...key, v[2], [v[0], v[1]])) this.track(p);
  }

  static ticket(): ViewTicket {
    return { copies: [], views: [], added: [] };
  }

  /** Queues a frames block's copies and view updates into `t`. */
  add(t: ViewTicket, hash: string, frames: readonly FrameEntry[]): void {
    frames.forEach((f, i) => {
      const id = frameId(f.frame);
      if (!id) return;
      const key: FrameKey = [id.device, id.boot, id.seq];
      const k = fk(...key);
      this.track(this.copies.put([id.device, id.boot, id.seq, hash, i], f.rxTime));
      let list = this.pendingCopies.get(k);
      if (!list) this.pendingCopies.set(k, (list = []));
      list.push([hash, i, f.rxTime]);
      t.copies.push([k, hash]);
      const ex = this.excludedSince(id.device);
      if (ex !== undefined && f.rxTime >= ex) return;
      const cur = this.current(k, key);
      if (cur !== undefined && !less([hash, i], [cur[0], cur[1]])) return;
      this.set(t, k, key, [hash, i, f.rxTime]);
    });
  }

  /** The turn's writes are durable (or failed): reads see the database again. */
  settle(t: ViewTicket): void {
    for (const [k, hash] of t.copies) {
      const list = this.pendingCopies.get(k);
      if (!list) continue;
      const rest = list.filter((c) => c[0] !== hash);
      if (rest.length === 0) this.pendingCopies.delete(k);
      else this.pendingCopies.set(k, rest);
    }
    for (const [k, ref] of t.views) if (this.pendingView.get(k) === ref) this.pendingView.delete(k);
  }

  /** Re-chooses one entry from the copies held (committed and queued). */
  recompute(t: ViewTicket, k: string): void {
    const key = parseFk(k);
    const ex = this.excludedSince(key[0]);
    let best: Copy | undefined;
    const consider = (hash: string, index: number, rxTime: number): void => {
      if (ex !== undefined && rxTime >= ex) return;
      if (best === undefined || less([hash, index], [best[0], best[1]])) best = [hash, index, rxTime];
    };
    for (const { key: c, value } of this.copies.getRange({ start: key, end: [key[0], key[1], key[2] + 1] })) {
      if (!this.removed.has(`${c[3]}/${c[4]}`)) consider(c[3], c[4], value);
    }
    for (const [h, i, rx] of this.pendingCopies.get(k) ?? []) if (!this.removed.has(`${h}/${i}`)) consider(h, i, rx);
    const cur = this.current(k, key);
    if (best === undefined) {
      if (cur !== undefined) this.set(t, k, key, null);
    } else if (cur === undefined || cur[0] !== best[0] || cur[1] !== best[1] || cur[2] !== best[2])
      this.set(t, k, key, best);
  }

  /**
   * Deletes pruned blocks' copies and re-chooses the entries they held, all queued in the
   * current turn (one transaction).
   */
  removeBlocks(t: ViewTicket, blocks: readonly { hash: string; frames: readonly FrameEntry[] }[]): void {
    const keys = new Set<string>();
    for (const { hash, frames } of blocks) {
      frames.forEach((f, i) => {
        const id = frameId(f.frame);
        if (!id) return;
        this.track(this.copies.remove([id.device, id.boot, id.seq, hash, i]));
        this.removed.add(`${hash}/${i}`);
        keys.add(fk(id.device, id.boot, id.seq));
      });
    }
    for (const k of keys) this.recompute(t, k);
    this.removed.clear();
  }

  /** Re-chooses every entry of a device (after its revocation was logged). */
  recomputeDevice(t: ViewTicket, device: string): void {
    const keys = new Set<string>();
    for (const c of this.copies.getKeys({ start: [device], end: [device + '\u0000'] }))
      if (c[0] === device) keys.add(fk(c[0], c[1], c[2]));
    for (const k of this.pendingCopies.keys()) if (k.startsWith(device + '\u0000')) keys.add(k);
    for (const k of keys) this.recompute(t, k);
  }

  /** Queues a block's copies without touching the view (upgrade.ts); returns how many. */
  putCopies(hash: string, frames: readonly FrameEntry[]): number {
    let n = 0;
    frames.forEach((f, i) => {
      const id = frameId(f.frame);
      if (!id) return;
      this.track(this.copies.put([id.device, id.boot, id.seq, hash, i], f.rxTime));
      n++;
    });
    return n;
  }

  /** Clears the view and its time indexes (upgrade.ts, before rebuilding them). */
  async clearAll(): Promise<void> {
    await this.view.clearAsync();
    await this.index.byTime.clearAsync();
    await this.index.byDevice.clearAsync();
  }

  /**
   * Queues the view entries (and index keys) of up to about `chunk` frames, from the copies
   * at or after `from`, whole frames only; returns where the next call starts (undefined: done).
   */
  rebuildFromCopies(from: unknown[], chunk: number): { entries: number; next: unknown[] | undefined } {
    let entries = 0;
    let group: FrameKey | undefined;
    let best: Copy | undefined;
    let ex: number | undefined;
    const write = (): void => {
      if (!group || !best) return;
      this.track(this.view.put(group, best));
      for (const p of this.index.put(...group, best[2], [best[0], best[1]])) this.track(p);
      entries++;
    };
    for (const { key: c, value } of this.copies.getRange({ start: from as CopyKey })) {
      if (!group || c[0] !== group[0] || c[1] !== group[1] || c[2] !== group[2]) {
        write();
        if (entries >= chunk) return { entries, next: c };
        if (c[0] !== group?.[0]) ex = this.excludedSince(c[0]);
        group = [c[0], c[1], c[2]];
        best = undefined;
      }
      // Copies are in (hash, index) order: the first not excluded is the least.
      if (best === undefined && (ex === undefined || value < ex)) best = [c[3], c[4], value];
    }
    write();
    return { entries, next: undefined };
  }

  entry(device: string, boot: number, seq: number): ViewEntry | undefined {
    const v = this.current(fk(device, boot, seq), [device, boot, seq]);
    return v === undefined ? undefined : { device, boot, seq, block: v[0], index: v[1], rxTime: v[2] };
  }

  /** Whether any copy of the frame is held or queued (shown or not): ingest's duplicate check. */
  holds(device: string, boot: number, seq: number): boolean {
    if (this.pendingCopies.has(fk(device, boot, seq))) return true;
    for (const _ of this.copies.getKeys({ start: [device, boot, seq], end: [device, boot, seq + 1], limit: 1 }))
      return true;
    return false;
  }

  /** Entries held (O(1), the table's own count). */
  count(): number {
    return (this.view.getStats() as { entryCount: number }).entryCount;
  }

  *entries(device?: string): Generator<ViewEntry> {
    const range =
      device === undefined ? this.view.getRange() : this.view.getRange({ start: [device], end: [device + '\u0000'] });
    for (const { key, value } of range)
      yield { device: key[0], boot: key[1], seq: key[2], block: value[0], index: value[1], rxTime: value[2] };
  }
}
