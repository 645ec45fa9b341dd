/**
 * The frames journal (gateway/log/README.md, "Journal"): ingest's frames are acked once they
 * are durable in `log-journal` (journal-table.ts), in the same transaction as their view
 * entries, and authored into a signed frames block later (**sealing**): when the open block
 * reaches MAX_BLOCK_FRAMES frames or JOURNAL_MAX_BYTES, when its first frame is older than the
 * seal window (held up to MAX_HOLD_WINDOWS windows to fill its last lmdb page: PageFit), before a
 * sync exchange, on close and at start (what a crash left). So at low rates a block holds a
 * second or so of frames rather than one commit group's one or two.
 *
 * Sealing authors, in one transaction: the enrolment (and key-wrap) blocks the frames need,
 * the frames block with the journal's entries in index order (its number the one the view
 * entries already point at), and removes the journal entries. It must run where blocks are
 * authored (the ingest commit loop: `inCommit`), so it never chains onto a block in doubt.
 */
import { type FrameEntry, MAX_BLOCK_FRAMES, type SignedBlock } from '../../protocols/index.js';
import type { PutHooks } from './apply.js';
import { author, beforeFrames, policyStream } from './authoring.js';
import { frameRow } from './frame-row.js';
import type { FrameRow } from './frames-index.js';
import { type JournalHead, JournalTable } from './journal-table.js';
import type { LogState } from './state.js';
import { type AddedFrame, FramesView } from './view.js';

/** Frame bytes an open block holds at most before it is sealed (a sync message carries a block whole). */
const JOURNAL_MAX_BYTES = 256 * 1024;
/** The seal window's default: a block holds at most about a second of a stream's frames. */
export const DEFAULT_SEAL_AFTER_MS = 1000;
/** A block past its window waiting to fill its last page (below) is sealed at this many windows regardless. */
const MAX_HOLD_WINDOWS = 3;

/**
 * lmdb stores a value larger than about half a page in overflow pages of its own, whole pages
 * (LMDB mdb.c, `mdb_node_add`: a value over `me_nodemax` goes to `mdb_page_new` overflow pages
 * with a 16-byte page header), so a 3 KB block costs 4 KiB and a 4.2 KB block 8 KiB. Past its
 * window, a block that would leave its last page mostly empty takes frames until the next
 * would not fit the page (at most MAX_HOLD_WINDOWS windows): at 20 frames a second, a block
 * of 25 frames in one page rather than 21 (bench/README.md, "Disk: what each further frame costs").
 */
class PageFit {
  /** The largest node lmdb keeps in a leaf page, ((page − 16) / 2) rounded down to even: a value over it goes to overflow pages. */
  private readonly nodeMax: number;
  /** Header, signature and CBOR heads of a stream's last block (over 20 B of fields an entry); 400 B before the first. */
  private readonly head = new Map<string, number>();

  constructor(private readonly page: number) {
    this.nodeMax = ((page - 16) / 2) & ~1;
  }

  /** Envelope bytes of a block of `n` frames of `bytes` in all, a little over: 20 B of fields an entry (17–20 B) and the stream's last header, plus a parent more. */
  estimate(stream: string, n: number, bytes: number): number {
    return bytes + 20 * n + (this.head.get(stream) ?? 400) + 34;
  }

  /** Learns a stream's header size from a block just sealed. */
  sealed(stream: string, n: number, bytes: number, envelope: number): void {
    this.head.set(stream, Math.max(0, envelope - bytes - 20 * n));
  }

  /** Bytes the block's whole pages hold (the overflow header taken off). */
  private capacity(size: number): number {
    return Math.ceil((size + 16) / this.page) * this.page - 16;
  }

  /** Whether a block of `size` bytes is worth sealing now: small enough to share a leaf page, or its last page at least 90 % used. */
  full(size: number): boolean {
    return size <= this.nodeMax || this.capacity(size) - size <= this.page / 10;
  }

  /** Whether growing a block from `size` to `next` bytes takes another page. */
  crosses(size: number, next: number): boolean {
    return next > this.nodeMax && this.capacity(next) > this.capacity(size);
  }
}

interface OpenBlock {
  readonly no: number;
  readonly head: JournalHead;
  readonly entries: FrameEntry[];
  /** The first index of each row the table holds for it (journal-table.ts), for removal at sealing. */
  readonly rows: number[];
  bytes: number;
}

export class Journal {
  readonly table: JournalTable;
  /** Open blocks by number; `current` names each stream's (the one new frames go into). */
  private readonly open = new Map<number, OpenBlock>();
  private readonly current = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly fit: PageFit;
  /** Runs a sealing task where blocks are authored (set by the gateway: the ingest commit loop). */
  inCommit: (task: () => void) => void = (task) => task();

  constructor(
    private readonly s: LogState,
    private readonly hooks: PutHooks,
    /** Seal an open block once its first frame is this old (0: in the transaction that journals it). */
    readonly sealAfterMs: number,
  ) {
    this.table = new JournalTable(s.store.root);
    this.fit = new PageFit((s.store.root.getStats() as { pageSize: number }).pageSize);
    this.reload();
  }

  /** Frames in open blocks. */
  get size(): number {
    let n = 0;
    for (const b of this.open.values()) n += b.entries.length;
    return n;
  }

  /** Open blocks holding frames, by stream: blocks each stream's chain will have once they are sealed. */
  openBlocks(): Map<string, number> {
    const out = new Map<string, number>();
    for (const b of this.open.values()) {
      if (b.entries.length === 0) continue;
      const stream = policyStream(b.head.policy);
      out.set(stream, (out.get(stream) ?? 0) + 1);
    }
    return out;
  }

  /** The stream of an open block (its head's policy name), from memory; undefined once sealed. */
  streamOf(no: number): string | undefined {
    const head = this.open.get(no)?.head ?? this.table.head(no);
    return head && policyStream(head.policy);
  }

  /** The open blocks as on disk (at start, and after a failed commit: what it queued did not land). */
  private reload(): void {
    this.open.clear();
    this.current.clear();
    // What the view noted of the blocks may not have landed: sealing reads the copies table again.
    this.s.view.journalReset();
    for (const b of this.table.blocks()) {
      const bytes = b.entries.reduce((n, e) => n + e.frame.length, 0);
      this.open.set(b.no, { no: b.no, head: b.head, entries: b.entries, rows: b.rows, bytes });
      this.current.set(policyStream(b.head.policy), b.no);
    }
  }

  /**
   * Journals frames this gateway stored (one policy), with their view entries, in the current
   * transaction; a block that fills up is sealed in it too. Call where blocks are authored.
   * The frames going into one open block are one journal row and one pass of the view's `add`
   * (one put, one revocation read a device), not one of each a frame.
   */
  append(frames: readonly FrameEntry[], policy: string): void {
    if (frames.length === 0) return;
    const stream = policyStream(policy);
    const ticket = FramesView.ticket();
    // The timer may be set for a block sealed here (held for its page); the new one's window ends sooner.
    let rearm = false;
    let i = 0;
    while (i < frames.length) {
      const no = this.current.get(stream);
      let ob = no === undefined ? undefined : this.open.get(no);
      // A full block, or one of another version of the stream's policy, is sealed first.
      if (ob && (ob.head.policy !== policy || !this.fits(ob, frames[i]!))) {
        this.seal(ob);
        ob = undefined;
        rearm = true;
      }
      if (!ob) {
        const head = { author: this.s.author, policy, opened: Date.now() };
        ob = { no: this.s.allocBlockNo(), head, entries: [], rows: [], bytes: 0 };
        this.open.set(ob.no, ob);
        this.current.set(stream, ob.no);
        this.s.view.journalOpened(ob.no);
        this.s.store.track(this.table.putHead(ob.no, head));
      }
      // As many of the frames as the block takes (at least one: it is empty or took frames[i] above).
      const first = ob.entries.length;
      const from = i;
      do {
        const f = frames[i++]!;
        ob.entries.push(f);
        ob.bytes += f.frame.length;
      } while (i < frames.length && this.fits(ob, frames[i]!));
      const seg = from === 0 && i === frames.length ? frames : frames.slice(from, i);
      ob.rows.push(first);
      this.s.store.track(this.table.putRow(ob.no, first, seg));
      this.s.view.add(ticket, ob.no, seg, first);
    }
    const landed = (): void => {
      this.s.view.settle(ticket);
      if (this.s.store.closed || ticket.added.length === 0 || this.s.frameListeners.size === 0) return;
      const rows = this.rows(ticket.added);
      for (const l of this.s.frameListeners) l(rows);
    };
    void this.s.store.durable().then(landed, () => {
      this.s.view.settle(ticket);
      this.reload();
    });
    if (this.sealAfterMs === 0) this.sealAll();
    else if (this.timer === undefined || rearm) this.arm();
  }

  /** Whether an open block takes one more frame (past its window: only within its last page). */
  private fits(ob: OpenBlock, f: FrameEntry): boolean {
    if (ob.entries.length >= MAX_BLOCK_FRAMES || ob.bytes + f.frame.length > JOURNAL_MAX_BYTES) return false;
    if (Date.now() - ob.head.opened < this.sealAfterMs) return true;
    const stream = policyStream(ob.head.policy);
    const size = this.fit.estimate(stream, ob.entries.length, ob.bytes);
    return !this.fit.crosses(size, this.fit.estimate(stream, ob.entries.length + 1, ob.bytes + f.frame.length));
  }

  /** Whether an open block is due: past its window with its last page well used, or past MAX_HOLD_WINDOWS windows. */
  private due(ob: OpenBlock, now: number): boolean {
    const age = now - ob.head.opened;
    if (age < this.sealAfterMs) return false;
    if (age >= MAX_HOLD_WINDOWS * this.sealAfterMs) return true;
    return this.fit.full(this.fit.estimate(policyStream(ob.head.policy), ob.entries.length, ob.bytes));
  }

  /** Rows for frames that entered the view from the journal (block null: not sealed yet). */
  private rows(added: readonly AddedFrame[]): FrameRow[] {
    const out: FrameRow[] = [];
    for (const a of added) {
      const ob = this.open.get(a.no);
      const e = ob?.entries[a.index] ?? this.table.entry(a.no, a.index);
      const head = ob?.head ?? this.table.head(a.no);
      if (!e || !head) continue; // sealed meanwhile: its block announces nothing new
      out.push(frameRow(a, a.block, a.index, e, head.author, policyStream(head.policy)));
    }
    return out;
  }

  /** Seals one open block (with the blocks its frames need first), in the current transaction. */
  private seal(ob: OpenBlock): SignedBlock[] {
    this.open.delete(ob.no);
    const stream = policyStream(ob.head.policy);
    if (this.current.get(stream) === ob.no) this.current.delete(stream);
    if (ob.entries.length === 0) {
      for (const p of this.table.remove(ob.no, ob.rows)) this.s.store.track(p);
      return [];
    }
    const out = beforeFrames(this.s, this.hooks, ob.entries, ob.head.policy);
    const block = author(this.s, this.hooks, { kind: 'frames', body: ob.entries }, ob.head.policy, ob.no);
    this.fit.sealed(stream, ob.entries.length, ob.bytes, block.envelope.length);
    out.push(block);
    for (const p of this.table.remove(ob.no, ob.rows)) this.s.store.track(p);
    // A failed commit reloads the open blocks from disk (they are still there).
    void this.s.store.durable().catch(() => this.reload());
    return out;
  }

  /** Seals every open block that is due (or all, with `now` = Infinity). */
  sealDue(now = Date.now()): SignedBlock[] {
    const out: SignedBlock[] = [];
    for (const ob of [...this.open.values()]) if (now === Infinity || this.due(ob, now)) out.push(...this.seal(ob));
    this.arm();
    return out;
  }

  /** Seals every open block now, in the current transaction. */
  sealAll(): SignedBlock[] {
    return this.sealDue(Infinity);
  }

  /** Seals every open block where blocks are authored; resolves once that is durable. */
  sealOpen(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.inCommit(() => {
        try {
          this.sealAll();
        } catch (err) {
          reject(err);
          return;
        }
        this.s.store.durable().then(resolve, reject);
      }),
    );
  }

  /** A timer for the next open block's check (unref'd: a process may exit with a journal, start seals it). */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // Each block's next check: its window's end, or once past it (held for its page), its last chance.
    const now = Date.now();
    let next = Infinity;
    for (const ob of this.open.values()) {
      const end = ob.head.opened + this.sealAfterMs;
      next = Math.min(next, end > now ? end : ob.head.opened + MAX_HOLD_WINDOWS * this.sealAfterMs);
    }
    if (next === Infinity || this.s.store.closed) return;
    const wait = Math.max(0, next - now);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.s.store.closed) this.inCommit(() => this.s.store.closed || this.sealDue());
    }, wait);
    this.timer.unref();
  }

  /** Stops the timer (the store closes: what is left is sealed at the next start). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
