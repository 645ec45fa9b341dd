/**
 * ExportSource over the block log's chains (gateway/log): the merged history this gateway
 * holds, its own blocks and its siblings', read chain by chain in seq order. This is the
 * one file that knows how the log is laid out; a frames index over the whole log can
 * replace it without touching the exporter or the sinks.
 *
 * Order across chains is the blocks' lamport clock (causal order): ascending for
 * oldest-first, descending for newest-first. A frame heard by two gateways sits in two
 * chains; a copy is skipped when another copy of it is in a chain position the sink has
 * already confirmed (or earlier in the same batch), so a sink sees each (device, boot, seq)
 * once. Only durable blocks are read: a block still in its transaction may be rolled back
 * and its seq reused, so a chain's read stops there.
 *
 * The blocks the log announces as durable are kept, decoded, for a while (`recent`):
 * a sink keeping up (the local rollups, always) takes the blocks ingest just stored from
 * there instead of reading each one back from lmdb and decoding it whole. Only the read of a
 * block changes: which blocks a batch takes and the cursor are the same either way, and a
 * block no longer kept (a sink far behind, or after a restart) is read from the log.
 */
import { type Block, decodeSignedBlock, type FrameEntry, frameBlockLayout, toHex } from '../../protocols/index.js';
import type { BlockLog } from '../log/block-log.js';
import { frameIdAndBody } from '../log/verify.js';
import type { Store } from '../store/store.js';
import {
  type ChainCursor,
  type ChainInfo,
  chainKey,
  confirm,
  covered,
  type ExportBatch,
  type ExportCursor,
  type ExportFrame,
  type ExportSource,
  type ResendPriority,
} from './source.js';

interface Candidate {
  readonly key: string;
  readonly seq: number;
  readonly hashes: string[];
  readonly lamport: number;
  readonly entries: readonly FrameEntry[];
  /** The block hash of each entry (a forked seq holds more than one block). */
  readonly blocks: readonly string[];
  readonly author: string;
  readonly policy: string;
}

/** What the export reads of a block: its frames (undefined for another kind) and where it sorts. */
interface Read {
  readonly lamport: number;
  /** The block's policy (only a block with frames needs it: its frames carry it). */
  readonly policy?: string;
  readonly entries: readonly FrameEntry[] | undefined;
}

/** One (device, boot) of a batch: its seqs' range, those with a copies entry (read once), those taken. */
interface Group {
  lo: number;
  hi: number;
  copied: Set<number> | undefined;
  readonly seen: Set<number>;
}

const emptyAt = (key: string, info: ChainInfo, seq: number): Candidate => ({
  key,
  seq,
  hashes: [],
  lamport: 0,
  entries: [],
  blocks: [],
  author: info.author,
  policy: info.stream,
});

/**
 * Frames kept in `recent` at most (a block of another kind counts as one). Kept frames pin
 * the buffers they were received in, so the bound is small: a sink not reading (down, standby)
 * must not hold much; one keeping up takes each block while it is still there.
 */
const RECENT_FRAMES = 2048;

interface Kept {
  readonly block: Block;
  readonly frames: number;
  /** Reads so far: once every exporter reading this source has had it, it is dropped. */
  reads: number;
}

export class BlockLogSource implements ExportSource {
  /** Durable blocks by hash as announced, oldest first (insertion order), bounded by frames. */
  private readonly recent = new Map<string, Kept>();
  private recentFrames = 0;
  /** Exporters subscribed (`onChange`): how many reads of a kept block to expect. */
  private readers = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly log: BlockLog,
    _store: Store,
  ) {
    this.unsubscribe = log.onDurableBlock((sb) => {
      if (this.readers > 0) this.remember(toHex(sb.hash), sb.block);
    });
  }

  /** Stops keeping announced blocks (the reads from lmdb still work). */
  close(): void {
    this.unsubscribe();
    this.recent.clear();
    this.recentFrames = 0;
  }

  private remember(hash: string, block: Block): void {
    const frames = block.kind === 'frames' ? block.body.length : 1;
    this.recent.set(hash, { block, frames, reads: 0 });
    this.recentFrames += frames;
    for (const [h, k] of this.recent) {
      if (this.recentFrames <= RECENT_FRAMES) break;
      this.forget(h, k);
    }
  }

  private forget(hash: string, k: Kept): void {
    this.recent.delete(hash);
    this.recentFrames -= k.frames;
  }

  /**
   * A held block as the export reads it: from the blocks just announced, else from the log.
   * A stored frames block is read in place (frameBlockLayout: its lamport, policy and entries,
   * the frames views into the envelope), not decoded and re-encoded whole: the log verified it
   * when it took it. Other kinds, sealed blocks and anything that does not read so are decoded.
   * undefined: not durable yet; null: unreadable (skipped, as before).
   */
  private block(hash: string): Read | null | undefined {
    const kept = this.recent.get(hash);
    if (kept) {
      // A reader that reads it again (a batch read ahead and dropped, a retry) finds it in lmdb.
      if (++kept.reads >= this.readers) this.forget(hash, kept);
      return this.readOf(kept.block);
    }
    // Queued and perhaps committed, but not flushed: announced (and kept) once it is durable.
    if (this.log.queued(hash)) return undefined;
    // A block with no frames (enrolment, policy, retention…) is not read at all: its index
    // entry has the lamport it sorts by. A chain of them (a device's enrolments) would
    // otherwise be read and decoded again by every batch until its turn came.
    const rec = this.log.lookup(hash);
    if (rec && rec.kind !== 'frames' && rec.kind !== 'sealed') return { lamport: rec.lamport, entries: undefined };
    const env = this.log.getEnvelope(hash);
    if (!env) return undefined;
    const layout = frameBlockLayout(env);
    const entries = layout.ok ? layout.value.entries() : undefined;
    if (layout.ok && entries) return { lamport: layout.value.lamport, policy: layout.value.policy, entries };
    const d = decodeSignedBlock(env);
    return d.ok ? this.readOf(d.value.block) : null;
  }

  private readOf(block: Block): Read {
    const b = this.log.readable(block);
    return { lamport: b.lamport, policy: b.policy, entries: b.kind === 'frames' ? b.body : undefined };
  }

  chains(): ChainInfo[] {
    return this.log
      .streamHeads()
      .filter((h) => !h.stream.startsWith('$'))
      .map((h) => ({ author: h.author, stream: h.stream, head: h.seq, low: this.log.mark(h.author, h.stream) }));
  }

  unsealed(readable: (s: string) => boolean): number {
    let n = 0;
    for (const [stream, blocks] of this.log.journalBlocks()) if (readable(stream)) n += blocks;
    return n;
  }

  onChange(fn: () => void): () => void {
    this.readers++;
    const off = this.log.onDurableBlock(() => fn());
    let on = true;
    return () => {
      if (on) this.readers--;
      on = false;
      off();
    };
  }

  next(cursor: ExportCursor, maxFrames: number, order: ResendPriority, readable: (s: string) => boolean): ExportBatch {
    const chains = this.chains();
    const gens = chains
      .filter((c) => readable(c.stream))
      .map((c) => this.chainCandidates(c, cursor[chainKey(c.author, c.stream)], order))
      .map((g) => ({ g, head: g.next() }))
      .filter((x) => !x.head.done);
    const taken: Candidate[] = [];
    let frames = 0;
    const better = (a: Candidate, b: Candidate): boolean =>
      order === 'oldest' ? a.lamport < b.lamport : a.lamport > b.lamport;
    while (gens.length > 0 && (taken.length === 0 || frames < maxFrames)) {
      let best = 0;
      for (let i = 1; i < gens.length; i++)
        if (better(gens[i]!.head.value as Candidate, gens[best]!.head.value as Candidate)) best = i;
      const cand = gens[best]!.head.value as Candidate;
      if (taken.length > 0 && frames + cand.entries.length > maxFrames) break;
      taken.push(cand);
      frames += cand.entries.length;
      gens[best]!.head = gens[best]!.g.next();
      if (gens[best]!.head.done) gens.splice(best, 1);
    }
    return { ...this.batch(cursor, taken, readable, chains), more: gens.length > 0 };
  }

  /** One chain's unconfirmed blocks in the order its cursor can take them. */
  private *chainCandidates(info: ChainInfo, c: ChainCursor | undefined, order: ResendPriority): Generator<Candidate> {
    const key = chainKey(info.author, info.stream);
    const done = Math.max(c?.done ?? -1, info.low - 1);
    const top = c?.top;
    const hole = (seq: number): Candidate => ({ ...emptyAt(key, info, seq) });
    if (order === 'oldest' || (!top && info.head <= done + 1)) {
      let expect = done + 1;
      for (const [seq] of this.log.iterStream(info.author, info.stream, done + 1)) {
        if (seq < expect || covered(c, seq)) continue; // a second block at a forked seq was read with the first
        while (expect < seq) yield hole(expect++); // no block there (pruned): passes the cursor
        const cand = this.read(key, info, seq);
        if (!cand) return; // not durable yet: the chain stops here
        expect = seq + 1;
        yield cand;
      }
      return;
    }
    // Newest first: blocks above the confirmed range (ascending, as they arrive), then the backlog downward.
    if (top)
      for (let seq = top[1] + 1; seq <= info.head; seq++) {
        const cand = this.read(key, info, seq);
        if (!cand) break;
        yield cand;
      }
    for (let seq = top ? top[0] - 1 : info.head; seq > done; seq--) {
      const cand = this.read(key, info, seq);
      if (cand) yield cand;
      else if (this.log.hashesAt(info.author, info.stream, seq).length > 0)
        return; // not durable yet
      else yield hole(seq);
    }
  }

  /** The durable blocks at one seq of a chain (more than one after an equivocation), or undefined. */
  private read(key: string, info: ChainInfo, seq: number): Candidate | undefined {
    const hashes = this.log.hashesAt(info.author, info.stream, seq);
    if (hashes.length === 0) return undefined;
    const entries: FrameEntry[] = [];
    const blocks: string[] = [];
    let lamport = 0;
    let policy = info.stream;
    const held: string[] = [];
    for (const h of hashes) {
      const b = this.block(h);
      if (b === undefined) return undefined;
      if (b === null) continue;
      lamport = Math.max(lamport, b.lamport);
      policy = b.policy ?? policy;
      held.push(h);
      if (b.entries)
        for (const e of b.entries) {
          entries.push(e);
          blocks.push(h);
        }
    }
    return { key, seq, hashes: held, lamport, entries, blocks, author: info.author, policy };
  }

  /** `chains`: as `next` read them, in the same turn (the log's stream heads are read once a batch). */
  private batch(
    cursor: ExportCursor,
    taken: readonly Candidate[],
    readable: (s: string) => boolean,
    chains: readonly ChainInfo[],
  ): ExportBatch {
    const next: ExportCursor = { ...cursor };
    const lows = new Map(chains.map((c) => [chainKey(c.author, c.stream), c.low]));
    // Each frame's identity (its body is not kept: the sink decodes it again, records.ts),
    // and per (device, boot) the seqs the batch holds, so the copies are looked up per run of
    // seqs (one range read) rather than per frame.
    const all: ExportFrame[] = [];
    const groups = new Map<string, Map<number, Group>>();
    for (const cand of taken) {
      let index = 0;
      for (let i = 0; i < cand.entries.length; i++) {
        const e = cand.entries[i]!;
        const block = cand.blocks[i]!;
        index = i > 0 && cand.blocks[i - 1] === block ? index + 1 : 0;
        const decoded = frameIdAndBody(e.frame);
        if (!decoded) continue;
        const { device, boot, seq } = decoded.id;
        let byBoot = groups.get(device);
        if (!byBoot) groups.set(device, (byBoot = new Map()));
        const g = byBoot.get(boot);
        if (!g) byBoot.set(boot, { lo: seq, hi: seq, copied: undefined, seen: new Set() });
        else if (seq < g.lo) g.lo = seq;
        else if (seq > g.hi) g.hi = seq;
        all.push({
          device,
          boot,
          seq,
          rxTime: e.rxTime,
          transport: e.transport,
          frame: e.frame,
          author: cand.author,
          policy: cand.policy,
          block,
          index,
        });
      }
      next[cand.key] = confirm(next[cand.key], cand.seq, lows.get(cand.key) ?? 0);
    }
    const frames: ExportFrame[] = [];
    // No copies entry anywhere (a gateway that never held a frame twice): nothing to look up.
    const none = new Set<number>();
    const anyCopied = this.log.anyCopied();
    for (const f of all) {
      const g = groups.get(f.device)!.get(f.boot)!;
      g.copied ??= anyCopied ? this.log.copiedSeqs(f.device, f.boot, g.lo, g.hi) : none;
      if (g.seen.has(f.seq)) continue;
      // Most frames are held in one copy (no copies entry): the range read answered for them.
      if (g.copied.has(f.seq) && this.exportedElsewhere(f, f.block, cursor, readable)) continue;
      g.seen.add(f.seq);
      frames.push(f);
    }
    return { frames, blocks: taken.length, cursor: next };
  }

  /** Whether another copy of the frame (one with a copies entry) sits in a block the sink has already confirmed. */
  private exportedElsewhere(
    id: { device: string; boot: number; seq: number },
    block: string,
    cursor: ExportCursor,
    readable: (s: string) => boolean,
  ): boolean {
    for (const c of this.log.copiesOf(id.device, id.boot, id.seq)) {
      if (c.block === block) continue;
      const rec = this.log.lookup(c.block);
      if (rec && readable(rec.stream) && covered(cursor[chainKey(rec.author, rec.stream)], rec.seq)) return true;
    }
    return false;
  }
}
