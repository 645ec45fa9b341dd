/**
 * The frames journal's table (gateway/log/README.md, "Journal"): frames acked before their
 * block is signed. Each own stream has at most one open block; its number is assigned at its
 * first frame (numbers.ts) and the view's entries point at [number, index] from then on, so
 * sealing the block rewrites no index entry.
 *
 *   log-journal  block u32                 → head: JSON {author (hex), policy, opened (ms)}
 *                block u32 · first u16     → one row a commit group: the group's entries, from
 *                                            index `first` on, as a canonical CBOR array of
 *                                            [frame bytes, rxTime, transport] (each item exactly
 *                                            as it will sit in the block's body)
 *
 * One row a group, not one a frame: a put (and at sealing a remove) per commit group instead of
 * per frame (bench/README.md, "The journal's rows"). Keys are big-endian with the number's top
 * bit set (as frame-keys.ts), so a block's head sorts right before its rows, in index order.
 * Read by the frames reader (a row of a block that has no `log-block-nos` entry yet) and by the
 * journal writer (journal.ts).
 */
import type { Database, RootDatabase } from 'lmdb';
import { decodeCbor, encodeCanonical, type FrameEntry, MAX_BLOCK_FRAMES } from '../../protocols/index.js';

export interface JournalHead {
  /** The author (this gateway's key, hex). */
  readonly author: string;
  /** `name@version` (or a bare name): the block's policy; its stream is the name. */
  readonly policy: string;
  /** When the block was opened (its first frame), ms. */
  readonly opened: number;
}

const TOP = 0x80000000;
const MAX_HEAD_BYTES = 1024;
/** Bounds the decoder of one row: at most a block's frames (journal.ts seals at 256 KiB), with their CBOR. */
const MAX_ROW_BYTES = 512 * 1024;
const ROW_LIMITS = {
  maxBytes: MAX_ROW_BYTES,
  maxItems: 4 * MAX_BLOCK_FRAMES + 1,
  maxContainerLength: MAX_BLOCK_FRAMES,
};

const journalHeadKey = (no: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((no | TOP) >>> 0, 0);
  return b;
};

const journalRowKey = (no: number, index: number): Buffer => {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt32BE((no | TOP) >>> 0, 0);
  b.writeUInt16BE(index, 4);
  return b;
};

/** A row's bytes: the entries as one canonical CBOR array (its items are the entries' bytes, back to back). */
export const encodeJournalRow = (es: readonly FrameEntry[]): Buffer =>
  Buffer.from(encodeCanonical(es.map((e) => [e.frame, e.rxTime, e.transport])));

const entryOf = (v: unknown): FrameEntry | undefined => {
  if (!Array.isArray(v) || v.length !== 3) return undefined;
  const [frame, rxTime, transport] = v;
  if (!(frame instanceof Uint8Array) || typeof transport !== 'string') return undefined;
  if (typeof rxTime !== 'number' || !Number.isSafeInteger(rxTime)) return undefined;
  return { frame, rxTime, transport };
};

/** Undefined for anything but a well-formed row of 1..MAX_BLOCK_FRAMES entries (bounded, never throws). */
export function decodeJournalRow(b: Uint8Array): FrameEntry[] | undefined {
  if (b.length > MAX_ROW_BYTES) return undefined;
  const d = decodeCbor(b, ROW_LIMITS);
  if (!d.ok || !Array.isArray(d.value) || d.value.length === 0 || d.value.length > MAX_BLOCK_FRAMES) return undefined;
  const out: FrameEntry[] = [];
  for (const v of d.value) {
    const e = entryOf(v);
    if (!e) return undefined;
    out.push(e);
  }
  return out;
}

function decodeHead(b: Uint8Array): JournalHead | undefined {
  if (b.length > MAX_HEAD_BYTES) return undefined;
  try {
    const v = JSON.parse(Buffer.from(b).toString('utf8')) as Partial<JournalHead>;
    if (typeof v.author !== 'string' || typeof v.policy !== 'string' || typeof v.opened !== 'number') return undefined;
    return { author: v.author, policy: v.policy, opened: v.opened };
  } catch {
    return undefined;
  }
}

/** One open block as the table holds it (committed). */
export interface JournalBlock {
  readonly no: number;
  readonly head: JournalHead;
  readonly entries: FrameEntry[];
  /** The first index of each row held (all of them, so sealing removes each). */
  readonly rows: number[];
}

export class JournalTable {
  readonly db: Database<Buffer, Buffer>;

  constructor(root: RootDatabase) {
    this.db = root.openDB({ name: 'log-journal', keyEncoding: 'binary', encoding: 'binary' });
  }

  head(no: number): JournalHead | undefined {
    const v = this.db.get(journalHeadKey(no));
    return v === undefined ? undefined : decodeHead(v);
  }

  /**
   * The entry at `index` of an open block: from the row holding it (the last row starting at or
   * before it). The last row decoded is kept: a committed row never changes (block numbers are
   * not reused, rows are only removed), and readers walk a row's frames in turn.
   */
  entry(no: number, index: number): FrameEntry | undefined {
    for (const key of this.db.getKeys({ start: journalRowKey(no, index), reverse: true, limit: 1 })) {
      if (key.length !== 6 || (key.readUInt32BE(0) & 0x7fffffff) !== no) return undefined;
      const first = key.readUInt16BE(4);
      const c = this.lastRow;
      if (c?.no === no && c.first === first) return c.entries[index - first];
      const v = this.db.get(key);
      const entries = v === undefined ? undefined : decodeJournalRow(v);
      if (!entries) return undefined;
      this.lastRow = { no, first, entries };
      return entries[index - first];
    }
    return undefined;
  }
  private lastRow: { no: number; first: number; entries: FrameEntry[] } | undefined;

  putHead(no: number, h: JournalHead): Promise<unknown> {
    return this.db.put(journalHeadKey(no), Buffer.from(JSON.stringify(h)));
  }

  /** Writes one row: `entries`, the open block's frames from index `first` on. */
  putRow(no: number, first: number, entries: readonly FrameEntry[]): Promise<unknown> {
    return this.db.put(journalRowKey(no, first), encodeJournalRow(entries));
  }

  /** Removes a block's head and its rows (`firsts`: each row's first index). */
  remove(no: number, firsts: readonly number[]): Promise<unknown>[] {
    const out = [this.db.remove(journalHeadKey(no))];
    for (const i of firsts) out.push(this.db.remove(journalRowKey(no, i)));
    return out;
  }

  /** Every open block held (committed), by number; entries in index order, up to the first gap. */
  blocks(): JournalBlock[] {
    const out: JournalBlock[] = [];
    let cur: JournalBlock | undefined;
    for (const { key, value } of this.db.getRange()) {
      const no = key.readUInt32BE(0) & 0x7fffffff;
      if (key.length === 4) {
        const head = decodeHead(value);
        cur = head ? { no, head, entries: [], rows: [] } : undefined;
        if (cur) out.push(cur);
        continue;
      }
      if (key.length !== 6 || cur?.no !== no) continue;
      const first = key.readUInt16BE(4);
      // Every row is listed for removal at sealing; only rows up to the first gap are entries.
      cur.rows.push(first);
      const es = first === cur.entries.length ? decodeJournalRow(value) : undefined;
      if (es && cur.entries.length + es.length <= MAX_BLOCK_FRAMES) cur.entries.push(...es);
    }
    return out;
  }

  /** The highest block number the journal holds, or 0. */
  last(): number {
    for (const k of this.db.getKeys({ reverse: true, limit: 1 })) return k.readUInt32BE(0) & 0x7fffffff;
    return 0;
  }

  isEmpty(): boolean {
    for (const _ of this.db.getKeys({ limit: 1 })) return false;
    return true;
  }
}
