/**
 * The frames journal (gateway/log/README.md, "Journal"): ingest's frames are acked once they
 * are durable in `log-journal` (journal-table.ts), in the same transaction as their view
 * entries, and authored into a signed frames block later (**sealing**): when the open block
 * reaches MAX_BLOCK_FRAMES frames or JOURNAL_MAX_BYTES, when its first frame is older than the
 * seal window, before a sync exchange, on close and at start (what a crash left). So at low
 * rates a block holds a second of frames rather than one commit group's one or two.
 *
 * Sealing authors, in one transaction: the enrolment (and key-wrap) blocks the frames need,
 * the frames block with the journal's entries in index order (its number the one the view
 * entries already point at), and removes the journal entries. It must run where blocks are
 * authored (the ingest commit loop: `inCommit`), so it never chains onto a block in doubt.
 */
import { type FrameEntry, MAX_BLOCK_FRAMES, type SignedBlock } from '../../protocols/index.js';
import type { PutHooks } from './apply.js';
import { author, beforeFrames, policyStream } from './authoring.js';
import { type FrameRow, frameRow } from './frames-index.js';
import { type JournalHead, JournalTable } from './journal-table.js';
import type { LogState } from './state.js';
import { type AddedFrame, FramesView } from './view.js';

/** Frame bytes an open block holds at most before it is sealed (a sync message carries a block whole). */
const JOURNAL_MAX_BYTES = 256 * 1024;
/** The seal window's default: a block holds at most about a second of a stream's frames. */
export const DEFAULT_SEAL_AFTER_MS = 1000;

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
  /** Runs a sealing task where blocks are authored (set by the gateway: the ingest commit loop). */
  inCommit: (task: () => void) => void = (task) => task();

  constructor(
    private readonly s: LogState,
    private readonly hooks: PutHooks,
    /** Seal an open block once its first frame is this old (0: in the transaction that journals it). */
    readonly sealAfterMs: number,
  ) {
    this.table = new JournalTable(s.store.root);
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
    let i = 0;
    while (i < frames.length) {
      const no = this.current.get(stream);
      let ob = no === undefined ? undefined : this.open.get(no);
      // A full block, or one of another version of the stream's policy, is sealed first.
      if (ob && (ob.head.policy !== policy || !this.fits(ob, frames[i]!))) {
        this.seal(ob);
        ob = undefined;
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
    else if (this.timer === undefined) this.arm();
  }

  /** Whether an open block takes one more frame. */
  private fits(ob: OpenBlock, f: FrameEntry): boolean {
    return ob.entries.length < MAX_BLOCK_FRAMES && ob.bytes + f.frame.length <= JOURNAL_MAX_BYTES;
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
    out.push(author(this.s, this.hooks, { kind: 'frames', body: ob.entries }, ob.head.policy, ob.no));
    for (const p of this.table.remove(ob.no, ob.rows)) this.s.store.track(p);
    // A failed commit reloads the open blocks from disk (they are still there).
    void this.s.store.durable().catch(() => this.reload());
    return out;
  }

  /** Seals every open block whose first frame is at least the window old (or all, with `now` = Infinity). */
  sealDue(now = Date.now()): SignedBlock[] {
    const out: SignedBlock[] = [];
    for (const ob of [...this.open.values()])
      if (now === Infinity || now - ob.head.opened >= this.sealAfterMs) out.push(...this.seal(ob));
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

  /** A timer for the oldest open block's window (unref'd: a process may exit with a journal, start seals it). */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    let oldest = Infinity;
    for (const ob of this.open.values()) oldest = Math.min(oldest, ob.head.opened);
    if (oldest === Infinity || this.s.store.closed) return;
    const wait = Math.max(0, oldest + this.sealAfterMs - Date.now());
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
