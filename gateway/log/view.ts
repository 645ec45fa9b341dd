/**
 * The frames view across authors, in the tables of frame-tables.ts (data format 4):
 *
 *   log-frame-view    [dev, boot, seq] → [block, index, rxTime]  the chosen copy
 *   log-frame-copies  [dev, boot, seq, block, index] → rxTime    the other copies held
 *
 * and, for each entry, the time indexes (written in the same turn, so a reader never sees an
 * entry without its index keys or the other way round). `dev` and `block` are short numbers
 * (numbers.ts).
 *
 * The chosen copy is the least (hash, index) among the copies held that are not
 * excluded (received at or after the device's logged revocation), so the view is a
 * function of the blocks held and every replica chooses the same. Every copy is kept track
 * of (not just the winner) because retention prunes blocks: the view must fall back to
 * another author's copy, or drop the entry, exactly as a replica that never held the
 * pruned block would have it. A frame with one copy, shown, is one view entry and no copies
 * entry (frame-tables.ts): that is almost every frame.
 */
import type { RootDatabase } from 'lmdb';
import type { FrameEntry } from '../../protocols/index.js';
import type { CopyRef, FrameKey } from './frame-keys.js';
import {
  after,
  COPY_KEY,
  copyValue,
  framePrefix,
  full,
  readCopyKey,
  readCopyValue,
  readViewKey,
  VIEW_KEY,
} from './frame-keys.js';
import { FrameTables } from './frame-tables.js';
import type { DeviceNumbering } from './numbers.js';
import type { ParsedFrame } from './frame-checks.js';
import { frameId } from './verify.js';

export interface ViewEntry {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /**
   * The block holding the chosen copy (the least (hash, index) among all copies, so every
   * replica chooses the same); null while it waits in this gateway's journal (not sealed yet).
   */
  readonly block: string | null;
  readonly index: number;
  /** The chosen copy's receive time. */
  readonly rxTime: number;
}

/** A frame newly in the view (no copy of it was shown before), once its block is durable. */
export interface AddedFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /** null: in the journal, its block not sealed yet. */
  readonly block: string | null;
  /** The block's number here (numbers.ts). */
  readonly no: number;
  readonly index: number;
}

/** Block numbers ↔ hashes as the log state knows them (queued ones included). */
export interface BlockNumberSource {
  hashOf(no: number): string | undefined;
}

const fk = (k: FrameKey): string => `${k.dev}\u0000${k.boot}\u0000${k.seq}`;
const parseFk = (k: string): FrameKey => {
  const [d, b, s] = k.split('\u0000');
  return { dev: Number(d), boot: Number(b), seq: Number(s) };
};
const ref = (c: CopyRef): string => `${c.block}/${c.index}`;

/** What one turn queued, to be forgotten once its transaction settles. */
export interface ViewTicket {
  /** Per block queued: the frame keys of its copies (one array a block, not a pair a frame). */
  readonly copies: { readonly no: number; readonly keys: string[] }[];
  readonly views: [string, { v: CopyRef | null }][];
  /** Frames that entered the view in this turn (no copy was shown before). */
  readonly added: AddedFrame[];
}

export class FramesView {
  readonly tables: FrameTables;
  /** Queued view changes (v null: entry removed), until their transaction lands; compared by reference. */
  private readonly pendingView = new Map<string, { v: CopyRef | null }>();
  private readonly pendingCopies = new Map<string, CopyRef[]>();
  /** Open journal blocks opened in this process → their frames given a copies entry (`journalOpened`). */
  private readonly contested = new Map<number, Set<string>>();
  /** Copies deleted in the current prune turn (reads still see them until it commits). */
  private readonly removed = new Set<string>();

  constructor(
    root: RootDatabase,
    private readonly track: (p: Promise<unknown>) => void,
    /** Receive time from which a device's copies are excluded (its logged revocation), if any. */
    private readonly excludedSince: (device: string) => number | undefined,
    readonly devices: DeviceNumbering,
    private readonly blocks: BlockNumberSource,
  ) {
    this.tables = new FrameTables(root);
  }

  private current(k: string, key: FrameKey): CopyRef | undefined {
    const p = this.pendingView.get(k);
    if (p !== undefined) return p.v ?? undefined;
    return this.tables.entry(key);
  }

  /**
   * (hash, index) order of two copies: the view's choice, alike on every replica. A copy in
   * the journal (no hash yet) goes first; it is chosen again when its block is sealed (`sealed`).
   */
  private less(a: CopyRef, b: CopyRef): boolean {
    if (a.block === b.block) return a.index < b.index;
    const ha = this.blocks.hashOf(a.block) ?? '';
    const hb = this.blocks.hashOf(b.block) ?? '';
    return ha < hb || (ha === hb && a.index < b.index);
  }

  /** Changes one entry (null: removes it) with its time-index keys. */
  private set(t: ViewTicket, k: string, key: FrameKey, v: CopyRef | null): void {
    const cur = this.current(k, key);
    const r = { v };
    this.pendingView.set(k, r);
    t.views.push([k, r]);
    if (cur !== undefined) {
      for (const p of this.tables.removeIndex({ ...key, rxTime: cur.rxTime })) this.track(p);
      // Still held (hidden, or a lesser copy won): listed, so it can come back.
      if (!this.removed.has(ref(cur))) {
        this.track(this.tables.putCopy(key, cur));
        this.contested.get(cur.block)?.add(k);
      }
    } else if (v !== null) {
      const device = this.devices.id(key.dev) ?? '';
      t.added.push({
        device,
        boot: key.boot,
        seq: key.seq,
        block: this.blocks.hashOf(v.block) ?? null,
        no: v.block,
        index: v.index,
      });
    }
    this.track(this.tables.setEntry(key, v === null ? null : copyValue(v)));
    if (v !== null) for (const p of this.tables.putIndex({ ...key, rxTime: v.rxTime }, v)) this.track(p);
  }

  static ticket(): ViewTicket {
    return { copies: [], views: [], added: [] };
  }

  /**
   * Queues a frames block's copies and view updates into `t` (`no`: the block's number; `first`:
   * the index of `frames[0]` in it, for frames journaled into an open block).
   */
  add(
    t: ViewTicket,
    no: number,
    frames: readonly FrameEntry[],
    first = 0,
    /** The frames as parsed by the caller (sync's intake parsed each frame once): their identities. */
    parsed?: readonly ParsedFrame[],
  ): void {
    // A block holds a few devices' frames: each one's revocation is read once per block.
    const excluded = new Map<string, number | undefined>();
    // An empty copies table (every frame held once: the common case) spares a seek per frame:
    // asked once per block (a journal's single frame goes straight to its own seek).
    const anyCopied = frames.length > 1 ? this.tables.anyCopies() : true;
    const queued: string[] = [];
    t.copies.push({ no, keys: queued });
    frames.forEach((f, j) => {
      const i = first + j;
      const p = parsed?.[j];
      const id = (p?.ok ? p.id : undefined) ?? frameId(f.frame);
      if (!id) return;
      const key: FrameKey = { dev: this.devices.assign(id.device), boot: id.boot, seq: id.seq };
      const k = fk(key);
      const c: CopyRef = { block: no, index: i, rxTime: f.rxTime };
      const pending = this.pendingView.get(k);
      const cur = pending !== undefined ? (pending.v ?? undefined) : this.tables.entry(key);
      // With nothing queued for it, the view table was just read: only the copies table is left to ask.
      const others =
        cur !== undefined ||
        this.pendingCopies.has(k) ||
        (pending === undefined ? anyCopied && this.tables.copied(key) : this.tables.holds(key));
      let ex = excluded.get(id.device);
      if (ex === undefined && !excluded.has(id.device)) excluded.set(id.device, (ex = this.excludedSince(id.device)));
      const hidden = ex !== undefined && f.rxTime >= ex;
      // A second copy, or one not shown: listed (with the shown one, so the list names both).
      if (others || hidden) {
        this.track(this.tables.putCopy(key, c));
        this.contested.get(no)?.add(k);
      }
      if (others && cur !== undefined) {
        this.track(this.tables.putCopy(key, cur));
        this.contested.get(cur.block)?.add(k);
      }
      let list = this.pendingCopies.get(k);
      if (!list) this.pendingCopies.set(k, (list = []));
      list.push(c);
      queued.push(k);
      if (hidden) return;
      if (cur !== undefined && !this.less(c, cur)) return;
      this.set(t, k, key, c);
    });
  }

  /**
   * A journal block was sealed (its hash now known, `no` unchanged): each of its frames held in
   * another copy too is chosen again, so the view is the least (hash, index) as on every replica.
   */
  sealed(t: ViewTicket, no: number, frames: readonly FrameEntry[]): void {
    // Opened in this process: the frames listed with another copy are known, no read a frame.
    const contested = this.contested.get(no);
    this.contested.delete(no);
    if (contested) {
      for (const k of contested) this.recompute(t, k);
      return;
    }
    for (const f of frames) {
      const id = frameId(f.frame);
      const dev = id && this.devices.no(id.device);
      if (!id || dev === undefined) continue;
      const key: FrameKey = { dev, boot: id.boot, seq: id.seq };
      const k = fk(key);
      if (this.pendingCopies.get(k)?.some((c) => c.block !== no) || this.tables.copied(key)) this.recompute(t, k);
    }
  }

  /**
   * A journal block opened in this process (journal.ts): from now on the view notes each of its
   * frames that gets a copies entry, so `sealed` re-chooses those without reading the copies
   * table for every frame. `journalReset` (the open blocks reloaded from disk) forgets them all.
   */
  journalOpened(no: number): void {
    this.contested.set(no, new Set());
  }

  journalReset(): void {
    this.contested.clear();
  }

  /** The turn's writes are durable (or failed): reads see the database again. */
  settle(t: ViewTicket): void {
    for (const { no, keys } of t.copies)
      for (const k of keys) {
        const list = this.pendingCopies.get(k);
        if (!list) continue;
        if (list.length === 1 && list[0]!.block === no) {
          this.pendingCopies.delete(k);
          continue;
        }
        const rest = list.filter((c) => c.block !== no);
        if (rest.length === 0) this.pendingCopies.delete(k);
        else this.pendingCopies.set(k, rest);
      }
    for (const [k, r] of t.views) if (this.pendingView.get(k) === r) this.pendingView.delete(k);
    this.devices.confirm();
  }

  /** Re-chooses one entry from the copies held (committed and queued). */
  recompute(t: ViewTicket, k: string): void {
    const key = parseFk(k);
    const device = this.devices.id(key.dev);
    const ex = device === undefined ? undefined : this.excludedSince(device);
    let best: CopyRef | undefined;
    const consider = (c: CopyRef): void => {
      if (this.removed.has(ref(c)) || (ex !== undefined && c.rxTime >= ex)) return;
      if (best === undefined || this.less(c, best)) best = c;
    };
    for (const c of this.tables.copiesOf(key)) consider(c);
    for (const c of this.pendingCopies.get(k) ?? []) consider(c);
    const cur = this.current(k, key);
    if (best === undefined) {
      if (cur !== undefined) this.set(t, k, key, null);
    } else if (cur === undefined || cur.block !== best.block || cur.index !== best.index || cur.rxTime !== best.rxTime)
      this.set(t, k, key, best);
  }

  /**
   * Deletes pruned blocks' copies and re-chooses the entries they held, all queued in the
   * current turn (one transaction).
   */
  removeBlocks(t: ViewTicket, blocks: readonly { no: number; frames: readonly FrameEntry[] }[]): void {
    const keys = new Set<string>();
    for (const { no, frames } of blocks) {
      frames.forEach((f, i) => {
        const id = frameId(f.frame);
        const dev = id && this.devices.no(id.device);
        if (!id || dev === undefined) return;
        const key: FrameKey = { dev, boot: id.boot, seq: id.seq };
        this.track(this.tables.removeCopy(key, no, i));
        this.removed.add(`${no}/${i}`);
        keys.add(fk(key));
      });
    }
    for (const k of keys) this.recompute(t, k);
    this.removed.clear();
  }

  /** Re-chooses every entry of a device (after its revocation was logged). */
  recomputeDevice(t: ViewTicket, device: string): void {
    const dev = this.devices.no(device);
    if (dev === undefined) return;
    const keys = new Set<string>();
    const p = framePrefix(dev);
    for (const b of this.tables.view.getKeys({ start: full(p, VIEW_KEY), end: after(p, VIEW_KEY) })) {
      const key = readViewKey(b);
      if (key) keys.add(fk(key));
    }
    for (const b of this.tables.copies.getKeys({ start: full(p, COPY_KEY), end: after(p, COPY_KEY) })) {
      const c = readCopyKey(b);
      if (c) keys.add(fk(c));
    }
    for (const k of [...this.pendingCopies.keys(), ...this.pendingView.keys()])
      if (k.startsWith(`${dev}\u0000`)) keys.add(k);
    for (const k of keys) this.recompute(t, k);
  }

  entry(device: string, boot: number, seq: number): ViewEntry | undefined {
    const dev = this.devices.no(device);
    if (dev === undefined) return undefined;
    const key = { dev, boot, seq };
    const v = this.current(fk(key), key);
    return v === undefined
      ? undefined
      : { device, boot, seq, block: this.blocks.hashOf(v.block) ?? null, index: v.index, rxTime: v.rxTime };
  }

  /** The number here (numbers.ts) of the block holding the chosen copy: names an open journal block too. */
  chosenNo(device: string, boot: number, seq: number): number | undefined {
    const dev = this.devices.no(device);
    if (dev === undefined) return undefined;
    const key = { dev, boot, seq };
    return this.current(fk(key), key)?.block;
  }

  /** Whether any copy of the frame is held or queued (shown or not): ingest's duplicate check. */
  holds(device: string, boot: number, seq: number): boolean {
    const dev = this.devices.no(device);
    if (dev === undefined) return false;
    const key = { dev, boot, seq };
    const k = fk(key);
    return this.pendingCopies.has(k) || this.pendingView.get(k)?.v != null || this.tables.holds(key);
  }

  /** Whether any frame may be held in more than one copy (committed): false, and every `copied` is false. */
  anyCopied(): boolean {
    return this.tables.anyCopies();
  }

  /** Of the seqs lo..hi of (device, boot), those that may be held in more than one copy (committed). */
  copiedSeqs(device: string, boot: number, lo: number, hi: number): Set<number> {
    const dev = this.devices.no(device);
    return dev === undefined ? new Set() : this.tables.copiedSeqs(dev, boot, lo, hi);
  }

  /** Every copy held of a frame (committed), as block hash and index: the export source's check. */
  copiesOf(device: string, boot: number, seq: number): { block: string; index: number }[] {
    const dev = this.devices.no(device);
    if (dev === undefined) return [];
    const out: { block: string; index: number }[] = [];
    for (const c of this.tables.copiesOf({ dev, boot, seq })) {
      const block = this.blocks.hashOf(c.block);
      if (block !== undefined) out.push({ block, index: c.index });
    }
    return out;
  }

  /** Entries held (O(1), the table's own count). */
  count(): number {
    return this.tables.count();
  }

  /** Entries by (device id, boot, seq), the same order on every replica. */
  *entries(device?: string): Generator<ViewEntry> {
    const devices =
      device === undefined
        ? this.devices.sorted()
        : [{ id: device, no: this.devices.no(device) }].filter(
            (d): d is { id: string; no: number } => d.no !== undefined,
          );
    for (const d of devices) {
      const p = framePrefix(d.no);
      for (const { key, value } of this.tables.view.getRange({ start: full(p, VIEW_KEY), end: after(p, VIEW_KEY) })) {
        const k = readViewKey(key);
        const v = readCopyValue(value);
        if (!k || !v) continue;
        const block = this.blocks.hashOf(v.block) ?? null;
        yield { device: d.id, boot: k.boot, seq: k.seq, block, index: v.index, rxTime: v.rxTime };
      }
    }
  }
}
