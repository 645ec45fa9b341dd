/**
 * The frames journal's table (gateway/log/README.md, "Journal"): frames acked before their
 * block is signed. Each own stream has at most one open block; its number is assigned at its
 * first frame (numbers.ts) and the view's entries point at [number, index] from then on, so
 * sealing the block rewrites no index entry.
 *
 *   log-journal  block u32                 → head: JSON {author (hex), policy, opened (ms)}
 *                block u32 · index u16     → the entry as it will sit in the block:
 *                                            canonical CBOR [frame bytes, rxTime, transport]
 *
 * Keys are big-endian with the number's top bit set (as frame-keys.ts), so a block's head
 * sorts right before its entries, in index order. Read by the frames reader (a row of a block
 * that has no `log-block-nos` entry yet) and by the journal writer (journal.ts).
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
/** Bounds the decoder of one entry (a frame is at most a few KiB). */
const MAX_ENTRY_BYTES = 64 * 1024;

const journalHeadKey = (no: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((no | TOP) >>> 0, 0);
  return b;
};

const journalEntryKey = (no: number, index: number): Buffer => {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt32BE((no | TOP) >>> 0, 0);
  b.writeUInt16BE(index, 4);
  return b;
};

/** The entry's bytes: exactly the CBOR item the block's body will hold for it. */
export const encodeJournalEntry = (e: FrameEntry): Buffer =>
  Buffer.from(encodeCanonical([e.frame, e.rxTime, e.transport]));

/** Undefined for anything but a well-formed entry (bounded, never throws). */
export function decodeJournalEntry(b: Uint8Array): FrameEntry | undefined {
  if (b.length > MAX_ENTRY_BYTES) return undefined;
  const d = decodeCbor(b);
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 3) return undefined;
  const [frame, rxTime, transport] = d.value;
  if (!(frame instanceof Uint8Array) || typeof transport !== 'string') return undefined;
  if (typeof rxTime !== 'number' || !Number.isSafeInteger(rxTime)) return undefined;
  return { frame, rxTime, transport };
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

  entry(no: number, index: number): FrameEntry | undefined {
    const v = this.db.get(journalEntryKey(no, index));
    return v === undefined ? undefined : decodeJournalEntry(v);
  }

  putHead(no: number, h: JournalHead): Promise<unknown> {
    return this.db.put(journalHeadKey(no), Buffer.from(JSON.stringify(h)));
  }

  putEntry(no: number, index: number, e: FrameEntry): Promise<unknown> {
    return this.db.put(journalEntryKey(no, index), encodeJournalEntry(e));
  }

  /** Removes a block's head and its `count` entries. */
  remove(no: number, count: number): Promise<unknown>[] {
    const out = [this.db.remove(journalHeadKey(no))];
    for (let i = 0; i < count; i++) out.push(this.db.remove(journalEntryKey(no, i)));
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
        cur = head ? { no, head, entries: [] } : undefined;
        if (cur) out.push(cur);
        continue;
      }
      if (key.length !== 6 || cur?.no !== no) continue;
      const e = decodeJournalEntry(value);
      if (e && key.readUInt16BE(4) === cur.entries.length && cur.entries.length < MAX_BLOCK_FRAMES) cur.entries.push(e);
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
