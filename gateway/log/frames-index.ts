/**
 * The one read model of frames: every frame this gateway holds, whichever gateway heard it,
 * once (the frames view's chosen copy, view.ts), found through two indexes that point into
 * blocks (gateway/log/README.md, "Reading frames"):
 *
 *   log-frame-time    [rxTime, dev, boot, seq] → [block, index]
 *   log-frame-device  [dev, rxTime, boot, seq] → [block, index]
 *
 * (binary keys, `dev` and `block` short numbers: frame-keys.ts, numbers.ts) *
 * `rxTime` is the chosen copy's receive time (its author's clock), so every replica holding
 * the same blocks has the same keys. The frame's bytes live once, in its block; a row is read
 * by opening the block (a small cache of opened blocks serves the neighbours, which mostly
 * share a block). Only frames of blocks this gateway could open are indexed (a sealed block
 * without its key is not), frames left out by a revocation are not, and pruning removes them
 * with their block; so a query answers within what the policies let this gateway hold.
 *
 * The tables (frame-tables.ts) are written by the view (view.ts) in the transaction that
 * changes an entry; FrameReader reads them (the gateway and the CLI alike).
 */
import type { Database, RootDatabase } from 'lmdb';
import { type Block, decodeSignedBlock, type FrameEntry, frameBlockLayout, toHex } from '../../protocols/index.js';
import {
  after,
  deviceKey,
  full,
  TIME_KEY,
  devicePrefix,
  type Pointer,
  blockOf,
  readDeviceKey,
  readPointer,
  readTimeKey,
  type TimeKey,
  timeKey,
  timePrefix,
} from './frame-keys.js';
import { frameRow, rowOf } from './frame-row.js';
import { FrameTables } from './frame-tables.js';
import { JournalTable } from './journal-table.js';
import { BlockNumbers, DeviceNumbers } from './numbers.js';
import { inSlices } from './prefetch.js';

/** One frame as every reader sees it. */
export interface FrameRow {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /** Receive time (ms) on the gateway that heard it. */
  readonly rxTime: number;
  /** The gateway that heard it: the block's author (hex Ed25519 key). */
  readonly heardBy: string;
  /** mqtt, serial, ble, … on that gateway. */
  readonly transport: string;
  /** The policy (stream) of the block holding it. */
  readonly policy: string;
  /**
   * The block holding the chosen copy, and the frame's index in it; block null while the frame
   * waits in its author's journal (acked, its block not sealed yet: journal.ts), so only on
   * the gateway that heard it, for about a second.
   */
  readonly block: string | null;
  readonly index: number;
  /** The COSE_Sign1 bytes exactly as the device signed them. */
  readonly frame: Uint8Array;
}

/** Where a page ended: the last row's index key (strictly after it resumes). */
export interface FrameCursor {
  readonly rxTime: number;
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
}

export interface FrameQuery {
  readonly device?: string;
  /** Receive time lower bound, ms (inclusive). */
  readonly since?: number;
  /** Receive time upper bound, ms (exclusive). */
  readonly until?: number;
  /**
   * Only frames this gateway (hex key) heard: it holds a copy that gateway logged. The row is
   * that copy (its receive time and transport), in the order of the chosen copies' times.
   */
  readonly heardBy?: string;
  /** Only frames of this policy (stream name). */
  readonly policy?: string;
  /** Rows returned at most (after the filters). */
  readonly limit?: number;
  /** Resume after this row (overrides `since`). */
  readonly after?: FrameCursor;
  /** Newest first. */
  readonly reverse?: boolean;
}

/** Cursor text for URLs and CLIs: `rxTime/device/boot/seq` (device ids never hold a `/`). */
export const formatCursor = (c: FrameCursor): string => `${c.rxTime}/${c.device}/${c.boot}/${c.seq}`;
export function parseCursor(s: string): FrameCursor | undefined {
  const m = /^(\d{1,16})\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/(\d{1,10})\/(\d{1,10})$/.exec(s);
  return m ? { rxTime: Number(m[1]), device: m[2]!, boot: Number(m[3]), seq: Number(m[4]) } : undefined;
}

/** A held frames block as the reader keeps it: its author (hex), stream and a way to each entry. */
interface CachedBlock {
  readonly hash: string;
  readonly heardBy: string;
  readonly policy: string;
  entry(index: number): FrameEntry | undefined;
}

/** Blocks kept for neighbouring rows (consecutive rows mostly share a block). */
const BLOCK_CACHE = 64;
/** Block numbers remembered as read once in one query (see `row`). */
export const PEEKED_MAX = 4096;

export interface FrameReaderSource {
  /** The root lmdb environment of the data directory. */
  readonly root: RootDatabase;
  /** The signed envelope of a block, if held. */
  envelope(hash: string): Uint8Array | undefined;
  /**
   * The same without a copy, valid only until the next read (lmdb's getBinaryFast): for a block
   * read for one row, as one device's rows mostly are (each in another block).
   */
  peek?(hash: string): Uint8Array | undefined;
  /** A block as this gateway can read it (a sealed block opened where it holds the key). */
  readable(block: Block): Block;
  /** Brings these blocks' pages into the page cache off the main thread (lmdb's prefetch). */
  prefetch?(hashes: string[]): Promise<void>;
}

/** Reads the frames index: rows in receive-time order, by device or across all devices. */
export class FrameReader {
  private readonly tables: FrameTables;
  private readonly devices: DeviceNumbers;
  private readonly blockNos: BlockNumbers;
  private readonly blockIndex: Database<{ readonly author: string }, string>;
  private readonly journal: JournalTable;
  private readonly cache = new Map<number, CachedBlock>();
  private readonly authorMemo = new Map<number, string>();
  /** Blocks this query read once without a copy: read again, they are copied and kept in the cache. */
  private readonly peeked = new Set<number>();

  /** A reader of a data directory's frames without keys (sealed blocks are not shown): tools and tests. */
  static plain(root: RootDatabase): FrameReader {
    const blocks = root.openDB<Buffer, string>({ name: 'log-blocks', encoding: 'binary' });
    return new FrameReader({
      root,
      envelope: (h) => blocks.get(h),
      peek: (h) => blocks.getBinaryFast(h),
      readable: (b) => b,
      prefetch: (hs) => blocks.prefetch(hs),
    });
  }

  constructor(private readonly src: FrameReaderSource) {
    this.tables = new FrameTables(src.root);
    this.devices = new DeviceNumbers(src.root);
    this.blockNos = new BlockNumbers(src.root);
    this.blockIndex = src.root.openDB({ name: 'log-index' });
    this.journal = new JournalTable(src.root);
  }

  *query(q: FrameQuery = {}): Generator<FrameRow> {
    const since = q.since ?? 0;
    const until = q.until ?? Number.MAX_SAFE_INTEGER;
    let left = q.limit ?? Infinity;
    if (left <= 0) return;
    const a = q.after;
    this.peeked.clear();
    for (const { key, dev, value } of this.range(q.device, since, until, a, q.reverse === true)) {
      let row = this.row(key, value);
      if (row && q.heardBy !== undefined && row.heardBy !== q.heardBy) row = this.copyBy(key, dev, q.heardBy);
      if (!row) continue;
      if (q.policy !== undefined && row.policy !== q.policy) continue;
      yield row;
      if (--left <= 0) return;
    }
  }

  /**
   * Reads ahead, side by side, what the first `n` index entries of `q` will read: their blocks'
   * numbers, then their envelopes. After a restart those pages are on disk only, and `query`'s
   * synchronous walk would wait for each in turn, one page fault at a time (bench/README.md,
   * "HTTP queries on a cold store"). A hint: whatever it misses, `query` reads as before.
   */
  async prefetch(q: FrameQuery, n: number): Promise<void> {
    if (!this.src.prefetch || n <= 0) return;
    const nos = new Set<number>();
    const e = this.entries(q.device, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, q.after, q.reverse === true);
    // Only the pointers' block numbers: a key `query` would skip costs at most one block read ahead.
    for (const { value } of e?.range ?? []) {
      const no = blockOf(value);
      if (no !== undefined && !this.cache.has(no)) nos.add(no);
      if (--n <= 0) break;
    }
    if (nos.size === 0) return;
    // Each slice reads its envelopes as soon as its own numbers are in, not after every slice's.
    await inSlices([...nos], async (s) => {
      await this.blockNos.prefetch(s);
      const hashes: string[] = [];
      for (const no of s) {
        const h = this.hashOf(no);
        if (h !== undefined) hashes.push(h);
      }
      if (hashes.length > 0) await this.src.prefetch!(hashes);
    });
  }

  /** The newest `n` frames of a device, newest first. */
  latest(device: string, n: number): Generator<FrameRow> {
    return this.query({ device, limit: n, reverse: true });
  }

  /** One frame by its identity, if this gateway holds (and may show) it. */
  get(device: string, boot: number, seq: number): FrameRow | undefined {
    const dev = this.devices.no(device);
    const v = dev === undefined ? undefined : this.tables.entry({ dev, boot, seq });
    return v === undefined ? undefined : this.row({ device, rxTime: v.rxTime, boot, seq }, v);
  }

  /** Frames held (view entries), from the table's own entry count (O(1)). */
  count(): number {
    return this.tables.count();
  }

  /** The copy of a frame that `author` logged, if this gateway holds one. */
  private copyBy(k: FrameCursor, dev: number, author: string): FrameRow | undefined {
    for (const c of this.tables.copiesOf({ dev, boot: k.boot, seq: k.seq }))
      if (this.authorOf(c.block) === author) return this.row(k, c);
    return undefined;
  }

  private hashOf(no: number): string | undefined {
    return this.blockNos.get(no);
  }

  private authorOf(no: number): string | undefined {
    let a = this.authorMemo.get(no);
    if (a === undefined) {
      const hash = this.hashOf(no);
      // Not sealed yet: the journal's open block names its author (not memoised: it is sealed soon).
      if (hash === undefined) return this.journal.head(no)?.author;
      a = this.blockIndex.get(hash)?.author;
      if (a === undefined) return undefined;
      if (this.authorMemo.size >= 4096) this.authorMemo.clear();
      this.authorMemo.set(no, a);
    }
    return a;
  }

  /**
   * The index range of a query: the table's entries from its bounds (strictly after the cursor
   * `a` when given), and the cursor's own key (a reverse range includes it: skip it); none for
   * a device with no number here.
   */
  private entries(
    device: string | undefined,
    since: number,
    until: number,
    a: FrameCursor | undefined,
    reverse: boolean,
  ): { range: Iterable<{ key: Buffer; value: Buffer }>; cur: Buffer | undefined; dev?: number } | undefined {
    const ad = a && this.devices.no(a.device);
    // The cursor's own key (resumed strictly after it), or, for a device with no number
    // here (no rows), the cursor's millisecond.
    const at = (keyOf: (k: TimeKey) => Buffer): Buffer | undefined =>
      a === undefined ? undefined : ad === undefined ? undefined : keyOf({ ...a, dev: ad });
    const span = (db: Database<Buffer, Buffer>, lo: Buffer, hi: Buffer): Iterable<{ key: Buffer; value: Buffer }> =>
      reverse
        ? db.getRange({ start: full(hi, TIME_KEY), end: full(lo, TIME_KEY), reverse: true, inclusiveEnd: true })
        : db.getRange({ start: full(lo, TIME_KEY), end: full(hi, TIME_KEY) });
    if (device !== undefined) {
      const dev = this.devices.no(device);
      if (dev === undefined) return undefined;
      const cur = at(deviceKey);
      const lo =
        a && !reverse ? (cur ? after(cur, TIME_KEY) : devicePrefix(dev, a.rxTime + 1)) : devicePrefix(dev, since);
      const hi = a && reverse ? (cur ?? devicePrefix(dev, a.rxTime)) : devicePrefix(dev, until);
      return { range: span(this.tables.byDevice, lo, hi), cur, dev };
    }
    const cur = at(timeKey);
    const lo = a && !reverse ? (cur ? after(cur, TIME_KEY) : timePrefix(a.rxTime + 1)) : timePrefix(since);
    const hi = a && reverse ? (cur ?? timePrefix(a.rxTime)) : timePrefix(until);
    return { range: span(this.tables.byTime, lo, hi), cur };
  }

  /** Index keys in order, as (device, rxTime, boot, seq) with the pointer. */
  private *range(
    device: string | undefined,
    since: number,
    until: number,
    a: FrameCursor | undefined,
    reverse: boolean,
  ): Generator<{ key: FrameCursor; dev: number; value: Pointer }> {
    const e = this.entries(device, since, until, a, reverse);
    if (!e) return;
    const { range, cur, dev } = e;
    if (device !== undefined && dev !== undefined) {
      for (const { key, value } of range) {
        if (cur && reverse && key.equals(cur)) continue;
        const k = readDeviceKey(key);
        const p = readPointer(value);
        if (!k || !p || k.dev !== dev || k.rxTime < since || k.rxTime >= until) continue;
        yield { key: { device, rxTime: k.rxTime, boot: k.boot, seq: k.seq }, dev, value: p };
      }
      return;
    }
    for (const { key, value } of range) {
      if (cur && reverse && key.equals(cur)) continue;
      const k = readTimeKey(key);
      const p = readPointer(value);
      if (!k || !p || k.rxTime < since || k.rxTime >= until) continue;
      const id = this.devices.id(k.dev);
      if (id === undefined) continue;
      yield { key: { device: id, rxTime: k.rxTime, boot: k.boot, seq: k.seq }, dev: k.dev, value: p };
    }
  }

  private row(k: FrameCursor, ptr: Pointer): FrameRow | undefined {
    const { block: no, index } = ptr;
    let c = this.cache.get(no);
    let hash = c?.hash ?? this.hashOf(no);
    // A block with no hash yet is an open block of the journal: the row is its entry there.
    if (hash === undefined) {
      const r = this.journalRow(k, ptr);
      if (r) return r;
      hash = this.hashOf(no); // sealed since: read from its block
      if (hash === undefined) return undefined;
    }
    // A block not seen lately is read in place for this one row (its frame copied out); a
    // block asked for again (its neighbours in time) is copied once and kept.
    const transient = c === undefined && this.src.peek !== undefined && !this.peeked.has(no);
    if (transient) {
      // One long query (an export of the whole log) would hold every block's number until the
      // next: past the cap it starts over, costing at most a second uncached read of a block.
      if (this.peeked.size >= PEEKED_MAX) this.peeked.clear();
      this.peeked.add(no);
      const env = this.src.peek!(hash);
      const layout = env && frameBlockLayout(env);
      if (layout?.ok)
        c = {
          hash,
          heardBy: this.hex(layout.value.author),
          policy: layout.value.stream,
          entry: (i) => layout.value.entry(i),
        };
    }
    c ??= this.cached(no, hash);
    const e = c?.entry(index); // none: pruned since the index was read
    if (!c || !e) return undefined;
    return rowOf(
      k,
      c.hash,
      index,
      e.rxTime,
      c.heardBy,
      e.transport,
      c.policy,
      transient ? new Uint8Array(e.frame) : e.frame,
    );
  }

  private journalRow(k: FrameCursor, { block: no, index }: Pointer): FrameRow | undefined {
    const head = this.journal.head(no);
    const e = head && this.journal.entry(no, index);
    if (!head || !e) return undefined;
    const at = head.policy.lastIndexOf('@');
    return frameRow(k, null, index, e, head.author, at > 0 ? head.policy.slice(0, at) : head.policy);
  }

  /** An author key's hex (the few authors of a site, memoised). */
  private hex(author: Uint8Array): string {
    const last = this.lastAuthor;
    if (last && last.key.length === author.length && Buffer.compare(last.key, author) === 0) return last.hex;
    const hex = toHex(author);
    this.lastAuthor = { key: Uint8Array.from(author), hex };
    return hex;
  }
  private lastAuthor: { key: Uint8Array; hex: string } | undefined;

  private cached(no: number, hash: string): CachedBlock | undefined {
    const hit = this.cache.get(no);
    if (hit) return hit;
    const envelope = this.src.envelope(hash);
    if (envelope === undefined) return undefined;
    let c: CachedBlock;
    const layout = frameBlockLayout(envelope);
    if (layout.ok) {
      // A plain frames block: walked once, then each entry read where it starts.
      const l = layout.value;
      c = { hash, heardBy: this.hex(l.author), policy: l.stream, entry: (i) => l.entry(i) };
    } else {
      // Sealed (or unreadable): opened once where this gateway holds the key.
      const d = decodeSignedBlock(envelope);
      if (!d.ok) return undefined;
      const b = this.src.readable(d.value.block);
      const body = b.kind === 'frames' ? b.body : undefined;
      c = { hash, heardBy: toHex(b.author), policy: b.stream, entry: (i) => body?.[i] };
    }
    if (this.cache.size >= BLOCK_CACHE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(no, c);
    return c;
  }
}
