/**
 * What one side of an exchange sends (engine.ts): its version vector, and per stream the
 * blocks a peer with a given vector lacks, read lazily from lmdb and merged in lamport order.
 */
import { encodeCanonical, fromHex, hashHex, sha256, toHex, type VectorEntry } from '../../protocols/index.js';
import { type BlockLog, PRUNABLE_KINDS } from '../log/block-log.js';

/** Which (author hex, stream) may be offered to the peer of a session (gateway/policy/sync-filter.ts); default: all. */
export type StreamFilter = (author: string, stream: string) => boolean;

/** This log's version vector: one entry per (author, stream) (only those `offer` allows); `low` is the mark once there is one. */
export function localVector(log: BlockLog, offer?: StreamFilter): VectorEntry[] {
  return log
    .streamHeads()
    .filter((h) => offer === undefined || offer(h.author, h.stream))
    .map((h) => {
      const r = log.streamRange(h.author, h.stream)!;
      return {
        author: fromHex(h.author)!,
        stream: h.stream,
        low: r.low,
        high: h.seq,
        count: r.count,
        heads: h.hashes.map((x) => fromHex(x)!),
        kept: keptDigest(log, h.author, h.stream),
      };
    });
}

/** The vector's `kept`: 8 bytes of SHA-256 over the sorted hashes of the blocks kept below the mark; empty when none. */
function keptDigest(log: BlockLog, author: string, stream: string): Uint8Array {
  const kept = log.keptBelow(author, stream);
  return kept.length === 0 ? new Uint8Array(0) : sha256(encodeCanonical(kept)).subarray(0, 8);
}

/** What to send of one stream: seqs from `from` (whole: registry blocks below the marks too), none below `floor`. */
export interface StreamPlan {
  readonly author: string;
  readonly stream: string;
  readonly from: number;
  /** Prunable blocks below this are never sent (the higher of both marks). */
  readonly floor: number;
  /** Send our mark's retention block first (the peer's mark is lower and we start at or below ours). */
  readonly mark: boolean;
  /** Also send the blocks kept below the floor (the peer's differ from ours, or the stream goes whole). */
  readonly kept: boolean;
}

/**
 * Per stream, what a peer with vector `theirs` lacks. A stream whose chains agree sends
 * only the seqs above the peer's head; a stream forked on either side (or whose heads
 * disagree) is sent whole, and the peer skips what it holds.
 */
export function planFor(
  log: BlockLog,
  theirs: readonly VectorEntry[],
  offer?: StreamFilter,
  only?: ReadonlySet<string>,
): StreamPlan[] {
  const t = new Map(theirs.map((e) => [`${toHex(e.author)}/${e.stream}`, e]));
  const out: StreamPlan[] = [];
  for (const h of log.streamHeads()) {
    if (only && !only.has(`${h.author}/${h.stream}`)) continue;
    if (offer !== undefined && !offer(h.author, h.stream)) continue;
    const e = t.get(`${h.author}/${h.stream}`);
    const r = log.streamRange(h.author, h.stream)!;
    let from: number | undefined;
    // Registry blocks kept below a mark are outside low..high: compared by their digest. A side
    // that has not learnt the peer's mark yet sends its registry blocks below it (the peer may
    // lack some; what it holds is answered known), so they converge in the same exchange.
    const mark = log.mark(h.author, h.stream);
    const keptDiffers = e !== undefined && hashHex(e.kept) !== hashHex(keptDigest(log, h.author, h.stream));
    if (only) from = 0;
    else {
      const forked = r.count !== h.seq - r.low + 1 || (e !== undefined && e.count !== e.high - e.low + 1);
      if (e === undefined || forked) from = 0;
      else if (e.high < h.seq) {
        // Their head must be our block at that seq, else the chains differ below: send all.
        const ours = log.hashesAt(h.author, h.stream, e.high);
        from = e.heads.length === 1 && ours.length === 1 && ours[0] === hashHex(e.heads[0]!) ? e.high + 1 : 0;
      } else if (e.high === h.seq) {
        const same = e.heads.length === h.hashes.length && e.heads.every((x, i) => hashHex(x) === h.hashes[i]);
        from = same ? undefined : 0;
      }
    }
    if (from === undefined && !keptDiffers) continue;
    const start = from ?? h.seq + 1; // only the kept blocks
    const ours = mark;
    const theirLow = e?.low ?? 0;
    out.push({
      author: h.author,
      stream: h.stream,
      from: start,
      floor: Math.max(ours, theirLow),
      mark: ours > 0 && theirLow < ours && (start <= ours || keptDiffers),
      kept: keptDiffers || start === 0,
    });
  }
  return out;
}

/**
 * One stream's blocks to send, read from lmdb in small chunks: the kept blocks below the
 * floor (if asked), then from `from`. In lamport order, which seq order is along one chain;
 * a forked stream (rare) is sorted in memory, since its branches interleave.
 */
function* streamPlanBlocks(log: BlockLog, p: StreamPlan): Generator<{ hash: string; lamport: number }> {
  function* raw(): Generator<{ hash: string; lamport: number }> {
    for (const [seq, hash] of log.iterStream(p.author, p.stream, p.kept ? 0 : p.from)) {
      const rec = log.lookup(hash);
      if (rec === undefined) continue; // pruned meanwhile
      if (seq < p.floor ? !p.kept || PRUNABLE_KINDS.has(rec.kind) : seq < p.from) continue;
      yield { hash, lamport: rec.lamport };
    }
  }
  if (log.forks(p.author, p.stream).length === 0) yield* raw();
  else yield* [...raw()].sort((a, b) => a.lamport - b.lamport || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
}

/**
 * The planned streams' blocks merged in lamport order (which puts each after its `prev`
 * and parents); memory holds one pending block per stream.
 */
export function* orderedBlocks(log: BlockLog, plans: readonly StreamPlan[]): Generator<string> {
  const its = plans.map((p) => streamPlanBlocks(log, p));
  const heads = its.map((it) => it.next());
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (h.done) continue;
      const b = heads[best]?.value as { hash: string; lamport: number } | undefined;
      if (best < 0 || h.value.lamport < b!.lamport || (h.value.lamport === b!.lamport && h.value.hash < b!.hash))
        best = i;
    }
    if (best < 0) return;
    yield (heads[best]!.value as { hash: string }).hash;
    heads[best] = its[best]!.next();
  }
}

/**
 * Streams to ask for whole: the peer is behind us there, so it will send nothing,
 * yet its head is a block we do not hold (its chain forked from ours below our head),
 * and not one we pruned (below our mark).
 */
export function wantsFrom(log: BlockLog, theirs: readonly VectorEntry[]): [Uint8Array, string][] {
  const out: [Uint8Array, string][] = [];
  for (const e of theirs) {
    const author = toHex(e.author);
    const r = log.streamRange(author, e.stream);
    if (r === undefined || e.high >= r.high || e.high < log.mark(author, e.stream)) continue; // the peer sends these itself, or we pruned them
    if (e.heads.some((h) => log.lookup(hashHex(h)) === undefined)) out.push([e.author, e.stream]);
  }
  return out;
}
