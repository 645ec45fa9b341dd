/**
 * The one read model of frames: every frame this gateway holds, whichever gateway heard it,
 * once (the frames view's chosen copy, view.ts), found through two indexes that point into
 * blocks (gateway/log/README.md, "Reading frames"):
 *
 *   log-by-time    [rxTime, device, boot, seq] → [block hash, index]
 *   log-by-device  [device, rxTime, boot, seq] → [block hash, index]
 *
 * `rxTime` is the chosen copy's receive time (its author's clock), so every replica holding
 * the same blocks has the same keys. The frame's bytes live once, in its block; a row is read
 * by opening the block (a small cache of opened blocks serves the neighbours, which mostly
 * share a block). Only frames of blocks this gateway could open are indexed (a sealed block
 * without its key is not), frames left out by a revocation are not, and pruning removes them
 * with their block; so a query answers within what the policies let this gateway hold.
 *
 * FrameIndexTables is written by the view (view.ts) in the transaction that changes an entry;
 * FrameReader reads it (the gateway and the CLI alike).
 */
import type { Database, RootDatabase } from 'lmdb';
import { type Block, decodeSignedBlock, type FrameEntry, frameBlockLayout, toHex } from '../../protocols/index.js';

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
  /** The block holding the chosen copy, and the frame's index in it. */
  readonly block: string;
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

export type FramePointer = [string, number];
type TimeKey = [number, string, number, number];
type DeviceKey = [string, number, number, number];

/** Cursor text for URLs and CLIs: `rxTime/device/boot/seq` (device ids never hold a `/`). */
export const formatCursor = (c: FrameCursor): string => `${c.rxTime}/${c.device}/${c.boot}/${c.seq}`;
export function parseCursor(s: string): FrameCursor | undefined {
  const m = /^(\d{1,16})\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/(\d{1,10})\/(\d{1,10})$/.exec(s);
  return m ? { rxTime: Number(m[1]), device: m[2]!, boot: Number(m[3]), seq: Number(m[4]) } : undefined;
}

/** The two index tables; written by the view (view.ts) in the same transaction as the entry. */
export class FrameIndexTables {
  readonly byTime: Database<FramePointer, TimeKey>;
  readonly byDevice: Database<FramePointer, DeviceKey>;

  constructor(root: RootDatabase) {
    this.byTime = root.openDB({ name: 'log-by-time' });
    this.byDevice = root.openDB({ name: 'log-by-device' });
  }

  /** Queues the index entries of a view entry (its chosen copy at `ptr`, received at `rxTime`). */
  put(device: string, boot: number, seq: number, rxTime: number, ptr: FramePointer): Promise<unknown>[] {
    return [this.byTime.put([rxTime, device, boot, seq], ptr), this.byDevice.put([device, rxTime, boot, seq], ptr)];
  }

  remove(device: string, boot: number, seq: number, rxTime: number): Promise<unknown>[] {
    return [this.byTime.remove([rxTime, device, boot, seq]), this.byDevice.remove([device, rxTime, boot, seq])];
  }
}

/** A held frames block as the reader keeps it: its author (hex), stream and a way to each entry. */
interface CachedBlock {
  readonly heardBy: string;
  readonly policy: string;
  entry(index: number): FrameEntry | undefined;
}

/** Blocks kept for neighbouring rows (consecutive rows mostly share a block). */
const BLOCK_CACHE = 64;
/** Block hashes remembered as read once in one query (see `row`). */
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
}

/** Reads the frames index: rows in receive-time order, by device or across all devices. */
export class FrameReader {
  private readonly tables: FrameIndexTables;
  private readonly view: Database<unknown, [string, number, number]>;
  private readonly copies: Database<number, [string, number, number, string, number]>;
  private readonly blockIndex: Database<{ readonly author: string }, string>;
  private readonly cache = new Map<string, CachedBlock>();
  private readonly authorMemo = new Map<string, string>();
  /** Blocks this query read once without a copy: read again, they are copied and kept in the cache. */
  private readonly peeked = new Set<string>();

  /** A reader of a data directory's frames without keys (sealed blocks are not shown): tools and tests. */
  static plain(root: RootDatabase): FrameReader {
    const blocks = root.openDB<Buffer, string>({ name: 'log-blocks', encoding: 'binary' });
    return new FrameReader({
      root,
      envelope: (h) => blocks.get(h),
      peek: (h) => blocks.getBinaryFast(h),
      readable: (b) => b,
    });
  }

  constructor(private readonly src: FrameReaderSource) {
    this.tables = new FrameIndexTables(src.root);
    this.view = src.root.openDB({ name: 'log-view' });
    this.copies = src.root.openDB({ name: 'log-copies' });
    this.blockIndex = src.root.openDB({ name: 'log-index' });
  }

  *query(q: FrameQuery = {}): Generator<FrameRow> {
    const since = q.since ?? 0;
    const until = q.until ?? Number.MAX_SAFE_INTEGER;
    let left = q.limit ?? Infinity;
    if (left <= 0) return;
    const a = q.after;
    this.peeked.clear();
    for (const { key, value } of this.range(q.device, since, until, a, q.reverse === true)) {
      let row = this.row(key, value);
      if (row && q.heardBy !== undefined && row.heardBy !== q.heardBy) row = this.copyBy(key, q.heardBy);
      if (!row) continue;
      if (q.policy !== undefined && row.policy !== q.policy) continue;
      yield row;
      if (--left <= 0) return;
    }
  }

  /** The newest `n` frames of a device, newest first. */
  latest(device: string, n: number): Generator<FrameRow> {
    return this.query({ device, limit: n, reverse: true });
  }

  /** One frame by its identity, if this gateway holds (and may show) it. */
  get(device: string, boot: number, seq: number): FrameRow | undefined {
    const v = this.view.get([device, boot, seq]) as [string, number, number] | undefined;
    return v === undefined ? undefined : this.row({ device, rxTime: v[2], boot, seq }, [v[0], v[1]]);
  }

  /** Frames held (view entries), from the table's own entry count (O(1)). */
  count(): number {
    return (this.view.getStats() as { entryCount: number }).entryCount;
  }

  /** The copy of a frame that `author` logged, if this gateway holds one. */
  private copyBy(k: FrameCursor, author: string): FrameRow | undefined {
    for (const c of this.copies.getKeys({ start: [k.device, k.boot, k.seq], end: [k.device, k.boot, k.seq + 1] })) {
      if (this.authorOf(c[3]) === author) return this.row(k, [c[3], c[4]]);
    }
    return undefined;
  }

  private authorOf(hash: string): string | undefined {
    let a = this.authorMemo.get(hash);
    if (a === undefined) {
      a = this.blockIndex.get(hash)?.author;
      if (a === undefined) return undefined;
      if (this.authorMemo.size >= 4096) this.authorMemo.clear();
      this.authorMemo.set(hash, a);
    }
    return a;
  }

  /** Index keys in order, as (device, rxTime, boot, seq) with the pointer. */
  private *range(
    device: string | undefined,
    since: number,
    until: number,
    a: FrameCursor | undefined,
    reverse: boolean,
  ): Generator<{ key: FrameCursor; value: FramePointer }> {
    if (device !== undefined) {
      // Keys are (device, rxTime, boot, seq): one seq past a row is the next possible key.
      const lo: DeviceKey | [string, number] = a && !reverse ? [device, a.rxTime, a.boot, a.seq + 1] : [device, since];
      const hi: DeviceKey | [string, number] = a && reverse ? [device, a.rxTime, a.boot, a.seq - 1] : [device, until];
      const r = reverse
        ? this.tables.byDevice.getRange({ start: hi, end: lo, reverse: true })
        : this.tables.byDevice.getRange({ start: lo, end: hi });
      for (const { key, value } of r) {
        if (key[0] !== device || key[1] < since || key[1] >= until) continue;
        yield { key: { device: key[0], rxTime: key[1], boot: key[2], seq: key[3] }, value };
      }
      return;
    }
    const lo: TimeKey | [number] = a && !reverse ? [a.rxTime, a.device, a.boot, a.seq + 1] : [since];
    const hi: TimeKey | [number] = a && reverse ? [a.rxTime, a.device, a.boot, a.seq - 1] : [until];
    const r = reverse
      ? this.tables.byTime.getRange({ start: hi, end: lo, reverse: true })
      : this.tables.byTime.getRange({ start: lo, end: hi });
    for (const { key, value } of r) {
      if (key[0] < since || key[0] >= until) continue;
      yield { key: { rxTime: key[0], device: key[1], boot: key[2], seq: key[3] }, value };
    }
  }

  private row(k: FrameCursor, ptr: FramePointer): FrameRow | undefined {
    const [block, index] = ptr;
    let c = this.cache.get(block);
    // A block not seen lately is read in place for this one row (its frame copied out); a
    // block asked for again (its neighbours in time) is copied once and kept.
    const transient = c === undefined && this.src.peek !== undefined && !this.peeked.has(block);
    if (transient) {
      // One long query (an export of the whole log) would hold every block's hash until the
      // next: past the cap it starts over, costing at most a second uncached read of a block.
      if (this.peeked.size >= PEEKED_MAX) this.peeked.clear();
      this.peeked.add(block);
      const env = this.src.peek!(block);
      const layout = env && frameBlockLayout(env);
      if (layout?.ok)
        c = {
          heardBy: this.hex(layout.value.author),
          policy: layout.value.stream,
          entry: (i) => layout.value.entry(i),
        };
    }
    c ??= this.cached(block);
    const e = c?.entry(index); // none: pruned since the index was read
    if (!c || !e) return undefined;
    return {
      device: k.device,
      boot: k.boot,
      seq: k.seq,
      rxTime: e.rxTime,
      heardBy: c.heardBy,
      transport: e.transport,
      policy: c.policy,
      block,
      index,
      frame: transient ? new Uint8Array(e.frame) : e.frame,
    };
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

  private cached(hash: string): CachedBlock | undefined {
    const hit = this.cache.get(hash);
    if (hit) return hit;
    const envelope = this.src.envelope(hash);
    if (envelope === undefined) return undefined;
    let c: CachedBlock;
    const layout = frameBlockLayout(envelope);
    if (layout.ok) {
      // A plain frames block: walked once, then each entry read where it starts.
      const l = layout.value;
      c = { heardBy: this.hex(l.author), policy: l.stream, entry: (i) => l.entry(i) };
    } else {
      // Sealed (or unreadable): opened once where this gateway holds the key.
      const d = decodeSignedBlock(envelope);
      if (!d.ok) return undefined;
      const b = this.src.readable(d.value.block);
      const body = b.kind === 'frames' ? b.body : undefined;
      c = { heardBy: toHex(b.author), policy: b.stream, entry: (i) => body?.[i] };
    }
    if (this.cache.size >= BLOCK_CACHE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, c);
    return c;
  }
}
