/**
 * The sync engine, transport-free: a `SyncSession` turns received message
 * bytes into message bytes to send (protocols/sync.ts). One session per side
 * of one exchange:
 *
 *   initiator ── hello {digest, vector} ──────────────────────────► responder
 *   initiator ◄── equal                                  (same digest: done)
 *   initiator ◄── vector, block…, done        (what the initiator lacks)
 *   initiator ── block…, done ────────────────────────────────────► (what the responder lacks)
 *
 * One round trip to learn the difference. `open({ probe: true })` first asks
 * "are we equal?" in one small message (`check` → `equal` | `differ`).
 * Blocks are sent in lamport order, which puts every block after its `prev` and
 * its parents, and each is verified by `BlockLog.apply` before it is queued; a
 * refused block is recorded and the rest keeps flowing (blocks that depend on
 * it are refused as missing-prev; while streams asked for by `want` are to come, a
 * block missing only a link waits for it, parked.ts). A cut exchange loses nothing: every applied
 * block stands on its own, and the next exchange starts from the new vectors
 * (so it sends only what was not applied, on streams whose chains agree).
 *
 * Blocks are produced lazily (`receive` returns an iterable read from lmdb a few
 * at a time as the transport takes them), so memory does not grow with the
 * difference. Retention: nothing below the peer's low-water mark or our own is
 * offered (registry blocks kept below a mark excepted), and before blocks whose
 * `prev` lies below our mark the signed retention block behind it goes as `mark`.
 */
import {
  decodeSyncMessage,
  encodeCanonical,
  encodeSyncMessage,
  fromHex,
  hashHex,
  sha256,
  type SyncMessage,
  toHex,
  type VectorEntry,
} from '../../protocols/index.js';
import { type BlockLog, PRUNABLE_KINDS } from '../log/block-log.js';
import type { Fault } from '../log/verify.js';
import type { SpaceCheck } from '../store/free-space.js';
import { missingLink, onlyMissingLinks, Parked } from './parked.js';

export interface SyncStats {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  blocksSent: number;
  /** Bytes of the block envelopes sent (what the peer was missing). */
  blockBytesSent: number;
  applied: number;
  known: number;
  /** Blocks received below our low-water mark (not kept; not a fault). */
  pruned: number;
  /** Low-water marks learnt from the peer (`mark`). */
  marks: number;
  rejected: Fault[];
  equivocations: number;
  /** Blocks and marks received but not applied: the disk was below the free-space floor (resent next exchange). */
  deferred: number;
  /** The peers were equal (answered by `equal`). */
  equal: boolean;
  /** A malformed message from the peer ended the session. */
  protocolError?: string;
}

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
function planFor(
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
function* orderedBlocks(log: BlockLog, plans: readonly StreamPlan[]): Generator<string> {
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
function wantsFrom(log: BlockLog, theirs: readonly VectorEntry[]): [Uint8Array, string][] {
  const out: [Uint8Array, string][] = [];
  for (const e of theirs) {
    const author = toHex(e.author);
    const r = log.streamRange(author, e.stream);
    if (r === undefined || e.high >= r.high || e.high < log.mark(author, e.stream)) continue; // the peer sends these itself, or we pruned them
    if (e.heads.some((h) => log.lookup(hashHex(h)) === undefined)) out.push([e.author, e.stream]);
  }
  return out;
}

export class SyncSession {
  readonly stats: SyncStats = {
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    blocksSent: 0,
    blockBytesSent: 0,
    applied: 0,
    known: 0,
    pruned: 0,
    marks: 0,
    rejected: [],
    equivocations: 0,
    deferred: 0,
    equal: false,
  };
  private sentDone = false;
  private gotDone = 0;
  /** Wants sent: each is answered by one more done. */
  private wants = 0;
  private ended = false;
  /** Blocks waiting for a link that the streams we asked for should bring. */
  private readonly parked = new Parked();
  /** The peer's vector (for its marks when answering a want). */
  private peerVector: readonly VectorEntry[] = [];

  /** Streams this peer may be offered (policies); set once the peer is known. */
  private offer: StreamFilter | undefined;

  constructor(
    private readonly log: BlockLog,
    /** Free-space guard: while it says no, blocks and marks are not applied (nothing written). */
    private readonly space?: SpaceCheck,
  ) {}

  /** Set once a block or mark was not applied for lack of space. */
  private deferring = false;

  /**
   * Offer and send only streams `offer` allows (the authenticated peer's permissions). The
   * digests of `check` and `hello` then cover only those streams: two peers whose offers to
   * each other are the same heads have nothing to exchange, so they answer `equal`.
   */
  restrict(offer: StreamFilter | undefined): void {
    this.offer = offer;
  }

  /** True once both sides said done (or equal), or the peer sent garbage. */
  get finished(): boolean {
    return this.ended || (this.sentDone && this.gotDone > this.wants);
  }

  /** True once the peer has nothing more to send (its dones, or equal), or sent garbage. */
  get peerFinished(): boolean {
    return this.ended || this.gotDone > this.wants;
  }

  /** The initiator's first message: `hello`, or a small `check` first with `probe`. */
  open(opts: { probe?: boolean } = {}): Uint8Array[] {
    return [
      this.out(opts.probe ? { type: 'check', digest: fromHex(this.log.headsDigest(this.offer))! } : this.hello()),
    ];
  }

  /**
   * Handles one message from the peer; returns the messages to send back, in order. Blocks
   * are produced lazily while the iterable is consumed (read it before the next `receive`
   * only if order across responses matters to the transport; link.ts queues them in order).
   */
  receive(bytes: Uint8Array): Iterable<Uint8Array> {
    this.stats.messagesReceived++;
    this.stats.bytesReceived += bytes.length;
    if (this.finished) return [];
    const d = decodeSyncMessage(bytes);
    if (!d.ok) {
      this.stats.protocolError = `${d.error.code}: ${d.error.message}`;
      this.ended = true;
      return [];
    }
    const m = d.value;
    switch (m.type) {
      case 'check':
        if (hashHex(m.digest) === this.log.headsDigest(this.offer)) return this.equal();
        return [this.out({ type: 'differ' })];
      case 'differ':
        return [this.out(this.hello())];
      case 'equal':
        this.stats.equal = true;
        this.ended = true;
        return [];
      case 'hello':
        if (hashHex(m.digest) === this.log.headsDigest(this.offer)) return this.equal();
        this.peerVector = m.vector;
        return this.chain(
          [this.out({ type: 'vector', vector: localVector(this.log, this.offer) }), ...this.wantFrom(m.vector)],
          this.send(planFor(this.log, m.vector, this.offer)),
        );
      case 'vector':
        this.peerVector = m.vector;
        return this.chain(this.wantFrom(m.vector), this.send(planFor(this.log, m.vector, this.offer)));
      case 'want':
        return this.send(
          planFor(this.log, this.peerVector, this.offer, new Set(m.streams.map(([a, st]) => `${toHex(a)}/${st}`))),
        );
      case 'mark': {
        if (this.lowDisk()) return [];
        const r = this.log.acceptMark(m.envelope);
        if (r.status === 'raised') this.stats.marks++;
        else if (r.status === 'rejected') this.stats.rejected.push(...r.faults);
        return [];
      }
      case 'block': {
        // Low disk: not applied, so lmdb never meets ENOSPC; our heads stay behind, so the next exchange resends it.
        if (this.lowDisk()) return [];
        this.applyBlocks([m.envelope]);
        return [];
      }
      case 'done':
        this.gotDone++;
        if (this.peerFinished && this.parked.size > 0) this.unpark();
        return [];
    }
  }

  /**
   * Applies blocks, and those parked on each one applied. While streams we asked for (`want`)
   * are to come, a block refused only for a missing `prev` or parent waits for it (parked.ts).
   */
  private applyBlocks(queue: Uint8Array[]): void {
    const waiting = this.wants > 0 && !this.peerFinished;
    for (let env = queue.pop(); env !== undefined; env = queue.pop()) {
      const r = this.log.apply(env);
      if (r.status === 'applied') {
        this.stats.applied++;
        if (r.equivocation) this.stats.equivocations++;
        queue.push(...this.parked.release(r.hash));
      } else if (r.status === 'known') this.stats.known++;
      else if (r.status === 'pruned') this.stats.pruned++;
      else {
        const missing = waiting && onlyMissingLinks(r.faults) ? missingLink(env, this.held) : undefined;
        if (missing === undefined || !this.parked.hold(missing, env)) this.stats.rejected.push(...r.faults);
      }
    }
  }

  private readonly held = (hash: string): boolean => this.log.lookup(hash) !== undefined;

  /** The peer is done: what still waits gets one more try (another session may have brought its links), else is refused. */
  private unpark(): void {
    const left = this.parked.drain();
    if (this.deferring) {
      this.stats.deferred += left.length;
      return;
    }
    this.applyBlocks(left);
  }

  /**
   * Whether to skip applying (counted as deferred). Sticky for the session: once one block is
   * skipped, a later one (its child, perhaps) must not land above the gap if space returns mid-exchange.
   */
  private lowDisk(): boolean {
    if (!this.deferring && this.space && !this.space.writable()) this.deferring = true;
    if (this.deferring) this.stats.deferred++;
    return this.deferring;
  }

  private *chain(first: readonly Uint8Array[], rest: Iterable<Uint8Array>): Generator<Uint8Array> {
    yield* first;
    yield* rest;
  }

  private hello(): SyncMessage {
    return {
      type: 'hello',
      digest: fromHex(this.log.headsDigest(this.offer))!,
      vector: localVector(this.log, this.offer),
    };
  }

  private equal(): Uint8Array[] {
    this.stats.equal = true;
    this.ended = true;
    return [this.out({ type: 'equal' })];
  }

  private wantFrom(theirs: readonly VectorEntry[]): Uint8Array[] {
    const streams = wantsFrom(this.log, theirs);
    if (streams.length === 0) return [];
    this.wants++;
    return [this.out({ type: 'want', streams })];
  }

  /** Marks first, then the planned blocks in lamport order, then done. */
  private *send(plans: readonly StreamPlan[]): Generator<Uint8Array> {
    for (const p of plans) {
      const envelope = p.mark ? this.log.markEnvelope(p.author, p.stream) : undefined;
      if (envelope) yield this.out({ type: 'mark', envelope });
    }
    for (const hash of orderedBlocks(this.log, plans)) {
      const envelope = this.log.getEnvelope(hash);
      if (envelope === undefined) continue;
      this.stats.blocksSent++;
      this.stats.blockBytesSent += envelope.length;
      yield this.out({ type: 'block', envelope });
    }
    yield this.out({ type: 'done', count: this.stats.blocksSent });
    this.sentDone = true;
  }

  private out(m: SyncMessage): Uint8Array {
    const bytes = encodeSyncMessage(m);
    this.stats.messagesSent++;
    this.stats.bytesSent += bytes.length;
    return bytes;
  }
}

export interface ExchangeResult {
  readonly initiator: SyncStats;
  readonly responder: SyncStats;
  /** Message flights (one direction change each); round trips = flights / 2 rounded up. */
  readonly flights: number;
}

/**
 * Runs one exchange between two logs in this process (tests, benchmarks, and
 * the reference for transports): messages are passed as bytes, flight by flight.
 * Waits for both logs' writes to be durable.
 */
export async function exchange(
  a: BlockLog,
  b: BlockLog,
  opts: { probe?: boolean; aOffers?: StreamFilter; bOffers?: StreamFilter } = {},
): Promise<ExchangeResult> {
  const sa = new SyncSession(a);
  const sb = new SyncSession(b);
  sa.restrict(opts.aOffers);
  sb.restrict(opts.bOffers);
  let flight = sa.open(opts);
  let flights = 0;
  let toB = true;
  while (flight.length > 0) {
    flights++;
    const next: Uint8Array[] = [];
    for (const m of flight) next.push(...(toB ? sb : sa).receive(m));
    flight = next;
    toB = !toB;
  }
  // Prunes started by marks are finished too, so digests and views can be compared.
  await Promise.all([a.settled(), b.settled()]);
  return { initiator: sa.stats, responder: sb.stats, flights };
}
