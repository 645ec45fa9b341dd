/**
 * Low-water marks and pruning (gateway/log/README.md, "Retention"):
 *
 *   log-low   [author, stream] → {low, envelope}   the mark and the retention block behind it
 *
 * A stream's mark is the highest `low` of the retention blocks seen for it (in its chain,
 * or sent ahead by sync as `mark`). Below it, prunable blocks (frames, sealed frames, older
 * marks) are deleted in one transaction with everything derived from them; registry blocks
 * (enrolments, key wraps, policies, rules, actuations) stay, so what is kept still verifies.
 */
import type { Database, RootDatabase } from 'lmdb';
import { type Block, decodeSignedBlock, type FrameEntry } from '../../protocols/index.js';
import { iterStream, streamBlocks } from './queries.js';
import { headKey, type LogState, type StreamHead } from './state.js';
import { FramesView } from './view.js';

/** A low-water mark and the signed retention block that set it. */
export interface MarkRecord {
  readonly author: string;
  readonly stream: string;
  readonly low: number;
  readonly envelope: Uint8Array;
}

/**
 * Block kinds a low-water mark prunes (frames, sealed frames, older marks, superseded export
 * cursors: gateway/export/cursor-log.ts); the rest
 * (enrolments, key wraps, policies, rules, actuations) stay, so kept blocks still verify.
 */
export const PRUNABLE_KINDS: ReadonlySet<Block['kind']> = new Set(['frames', 'sealed', 'retention', 'cursor']);

export class Marks {
  private readonly lowDb: Database<{ low: number; envelope: Buffer }, [string, string]>;
  /** Marks by `author/stream` (authoritative, like the heads). */
  private readonly marks = new Map<string, number>();
  /** Retention blocks behind marks not yet durable. */
  private readonly pendingMarks = new Map<string, Uint8Array>();

  constructor(
    root: RootDatabase,
    /** The log's tables and shared state (state.ts). */
    private readonly log: LogState,
  ) {
    this.lowDb = root.openDB({ name: 'log-low' });
    for (const { key, value } of this.lowDb.getRange()) this.marks.set(headKey(key[0], key[1]), value.low);
  }

  /** Streams that have a mark. */
  get size(): number {
    return this.marks.size;
  }

  get(author: string, stream: string): number {
    return this.marks.get(headKey(author, stream)) ?? 0;
  }

  /** [author, stream] of every stream with a mark. */
  *streams(): Generator<[string, string]> {
    for (const k of this.marks.keys()) yield [k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1)];
  }

  *records(): Generator<MarkRecord> {
    for (const { key, value } of this.lowDb.getRange())
      yield { author: key[0], stream: key[1], low: value.low, envelope: new Uint8Array(value.envelope) };
  }

  envelope(author: string, stream: string): Uint8Array | undefined {
    const p = this.pendingMarks.get(headKey(author, stream));
    if (p) return p;
    const v = this.lowDb.get([author, stream]);
    return v === undefined ? undefined : new Uint8Array(v.envelope);
  }

  /** Records a higher mark (queued in the current transaction); false when not higher. */
  raise(author: string, stream: string, low: number, envelope: Uint8Array): boolean {
    const k = headKey(author, stream);
    if (low <= this.get(author, stream)) return false;
    this.marks.set(k, low);
    this.pendingMarks.set(k, envelope);
    this.log.store.track(this.lowDb.put([author, stream], { low, envelope: Buffer.from(envelope) }));
    const drop = (): void => void (this.pendingMarks.get(k) === envelope && this.pendingMarks.delete(k));
    void this.log.store.durable().then(drop, drop);
    return true;
  }

  /** Hashes (sorted) of the blocks a mark keeps below it in a stream (registry blocks); none without a mark. */
  keptBelow(author: string, stream: string): string[] {
    const mark = this.get(author, stream);
    if (mark === 0) return [];
    const out: string[] = [];
    for (const [seq, hash] of iterStream(this.log, author, stream, 0)) {
      if (seq >= mark) break;
      const rec = this.log.lookup(hash);
      if (rec !== undefined && !PRUNABLE_KINDS.has(rec.kind)) out.push(hash);
    }
    return out.sort();
  }

  /**
   * Deletes the stream's prunable blocks below its mark, with their index, chain, fork
   * records, copies, view entries and time-index keys (the frames' only copy is their block):
   * all in this one turn, so one transaction.
   */
  prune(author: string, stream: string): number {
    const low = this.get(author, stream);
    const gone: { hash: string; no: number; frames: readonly FrameEntry[] }[] = [];
    const seqs = new Set<number>();
    for (const k of this.log.chain.getKeys({ start: [author, stream, 0], end: [author, stream, low] })) {
      const hash = k[3];
      const rec = this.log.index.get(hash);
      if (rec !== undefined && !PRUNABLE_KINDS.has(rec.kind)) continue;
      let frames: readonly FrameEntry[] = [];
      if (rec?.kind === 'frames' || rec?.kind === 'sealed') {
        const d = decodeSignedBlock(this.log.getEnvelope(hash) ?? new Uint8Array());
        const plain = d.ok ? this.log.readable(d.value.block) : undefined;
        if (plain?.kind === 'frames') frames = plain.body;
      }
      gone.push({ hash, no: rec?.no ?? -1, frames });
      seqs.add(k[2]);
      const track = (p: Promise<unknown>): void => this.log.store.track(p);
      track(this.log.blocks.remove(hash));
      track(this.log.index.remove(hash));
      if (rec?.no !== undefined) track(this.log.blockNos.remove(rec.no));
      if (rec !== undefined && rec.kind !== 'frames') track(this.log.kinds.remove([rec.kind, hash]));
      track(this.log.chain.remove([author, stream, k[2], hash]));
    }
    if (gone.length === 0) return 0;
    const goneSet = new Set(gone.map((g) => g.hash));
    for (const seq of seqs) {
      if (this.log.hashesAt(author, stream, seq).filter((h) => !goneSet.has(h)).length < 2)
        this.log.store.track(this.log.equivocDb.remove([author, stream, seq]));
    }
    // A mark learnt ahead of its blocks (sync `mark`, then a cut) can prune the head itself:
    // the head falls back to the highest block still held (a kept one), or the stream has none.
    const hk = headKey(author, stream);
    const head = this.log.heads.get(hk);
    if (head?.hashes.every((h) => goneSet.has(h))) {
      let next: StreamHead | undefined;
      for (const k of this.log.chain.getKeys({
        start: [author, stream, Number.MAX_SAFE_INTEGER],
        end: [author, stream, 0],
        reverse: true,
      })) {
        if (goneSet.has(k[3])) continue;
        const hashes = this.log.hashesAt(author, stream, k[2]).filter((h) => !goneSet.has(h));
        next = {
          author,
          stream,
          seq: k[2],
          hashes,
          lamport: Math.max(...hashes.map((h) => this.log.lookup(h)?.lamport ?? 0)),
        };
        break;
      }
      if (next) {
        this.log.heads.set(hk, next);
        this.log.store.track(
          this.log.headsDb.put([author, stream], { seq: next.seq, hashes: next.hashes, lamport: next.lamport }),
        );
      } else {
        this.log.heads.delete(hk);
        this.log.store.track(this.log.headsDb.remove([author, stream]));
      }
    }
    const ticket = FramesView.ticket();
    this.log.view.removeBlocks(
      ticket,
      gone.filter((g) => g.no >= 0),
    );
    void this.log.store.durable().then(
      () => this.log.view.settle(ticket),
      () => this.log.view.settle(ticket),
    );
    return gone.length;
  }

  /**
   * Where a mark for this gateway's `stream` would go for receive times before `cutoff`:
   * the first frames block with a frame received at or after it (or the next seq when all
   * are older), and how many prunable blocks lie below that above the present mark.
   */
  plan(stream: string, cutoff: number): { low: number; prunable: number } {
    const head = this.log.heads.get(headKey(this.log.author, stream));
    const mark = this.get(this.log.author, stream);
    let prunable = 0;
    // Data blocks (frames, sealed frames) old enough to go; older marks go along but are no
    // reason for a new mark (else every tick would author one to prune the last).
    let data = 0;
    const plan = (low: number): { low: number; prunable: number } => ({ low, prunable: data > 0 ? prunable : 0 });
    for (const [seq, hash] of streamBlocks(this.log, this.log.author, stream, mark)) {
      const rec = this.log.lookup(hash);
      if (rec === undefined || !PRUNABLE_KINDS.has(rec.kind)) continue;
      if (prunable >= (this.log.opts.maxPrunePerMark ?? 512)) return plan(seq);
      if (rec.kind !== 'retention') {
        let t = rec.time;
        if (t === undefined) {
          const d = decodeSignedBlock(this.log.getEnvelope(hash) ?? new Uint8Array());
          const b = d.ok ? this.log.readable(d.value.block) : undefined;
          t = b?.kind === 'frames' ? b.body.reduce((m, f) => Math.max(m, f.rxTime), 0) : Number.MAX_SAFE_INTEGER;
        }
        if (t >= cutoff) return plan(seq);
        data++;
      }
      prunable++;
    }
    return plan(head === undefined ? 0 : head.seq + 1);
  }
}
