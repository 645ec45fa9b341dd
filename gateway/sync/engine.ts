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
 * it are refused as missing-prev). A cut exchange loses nothing: every applied
 * block stands on its own, and the next exchange starts from the new vectors.
 */
import { decodeSyncMessage, encodeSyncMessage, fromHex, hashHex, type SyncMessage, toHex, type VectorEntry } from '../../protocols/index.js';
import type { BlockLog } from '../log/block-log.js';
import type { Fault } from '../log/verify.js';

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
  rejected: Fault[];
  equivocations: number;
  /** The peers were equal (answered by `equal`). */
  equal: boolean;
  /** A malformed message from the peer ended the session. */
  protocolError?: string;
}

/** Which (author hex, stream) may be offered to the peer of a session (gateway/policy/sync-filter.ts); default: all. */
export type StreamFilter = (author: string, stream: string) => boolean;

/** This log's version vector: one entry per (author, stream) (only those `offer` allows). */
export function localVector(log: BlockLog, offer?: StreamFilter): VectorEntry[] {
  return log.streamHeads().filter((h) => offer === undefined || offer(h.author, h.stream)).map((h) => {
    const r = log.streamRange(h.author, h.stream)!;
    return { author: fromHex(h.author)!, stream: h.stream, low: r.low, high: h.seq, count: r.count, heads: h.hashes.map((x) => fromHex(x)!) };
  });
}

/**
 * Hashes of the blocks a peer with vector `theirs` lacks, in lamport order.
 * A stream whose chains agree sends only the seqs above the peer's head; a
 * stream forked on either side (or whose heads disagree) is sent whole, and the
 * peer skips what it holds.
 */
export function missingFor(log: BlockLog, theirs: readonly VectorEntry[], offer?: StreamFilter): string[] {
  const t = new Map(theirs.map((e) => [`${toHex(e.author)}/${e.stream}`, e]));
  const out: { hash: string; lamport: number }[] = [];
  for (const h of log.streamHeads()) {
    if (offer !== undefined && !offer(h.author, h.stream)) continue;
    const e = t.get(`${h.author}/${h.stream}`);
    const r = log.streamRange(h.author, h.stream)!;
    const forked = r.count !== h.seq - r.low + 1 || (e !== undefined && e.count !== e.high - e.low + 1);
    let from: number | undefined;
    if (e === undefined || forked) from = 0;
    else if (e.high < h.seq) {
      // Their head must be our block at that seq, else the chains differ below: send all.
      const ours = log.hashesAt(h.author, h.stream, e.high);
      from = e.heads.length === 1 && ours.length === 1 && ours[0] === hashHex(e.heads[0]!) ? e.high + 1 : 0;
    } else if (e.high === h.seq) {
      const same = e.heads.length === h.hashes.length && e.heads.every((x, i) => hashHex(x) === h.hashes[i]);
      from = same ? undefined : 0;
    }
    if (from === undefined) continue;
    for (const [, hash] of log.streamBlocks(h.author, h.stream, from)) out.push({ hash, lamport: log.lookup(hash)?.lamport ?? 0 });
  }
  out.sort((a, b) => a.lamport - b.lamport || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  return out.map((x) => x.hash);
}

/**
 * Streams to ask for whole: the peer is behind us there, so it will send nothing,
 * yet its head is a block we do not hold (its chain forked from ours below our head).
 */
export function wantsFrom(log: BlockLog, theirs: readonly VectorEntry[]): [Uint8Array, string][] {
  const out: [Uint8Array, string][] = [];
  for (const e of theirs) {
    const author = toHex(e.author);
    const r = log.streamRange(author, e.stream);
    if (r === undefined || e.high >= r.high) continue; // the peer sends these itself
    if (e.heads.some((h) => log.lookup(hashHex(h)) === undefined)) out.push([e.author, e.stream]);
  }
  return out;
}

/** Every block of the named streams, in lamport order. */
function wholeStreams(log: BlockLog, streams: readonly (readonly [Uint8Array, string])[], offer?: StreamFilter): string[] {
  const out: { hash: string; lamport: number }[] = [];
  for (const [a, st] of streams) if (offer === undefined || offer(toHex(a), st)) for (const [, hash] of log.streamBlocks(toHex(a), st)) out.push({ hash, lamport: log.lookup(hash)?.lamport ?? 0 });
  out.sort((a, b) => a.lamport - b.lamport || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  return out.map((x) => x.hash);
}

export class SyncSession {
  readonly stats: SyncStats = { messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, blocksSent: 0, blockBytesSent: 0, applied: 0, known: 0, rejected: [], equivocations: 0, equal: false };
  private sentDone = false;
  private gotDone = 0;
  /** Wants sent: each is answered by one more done. */
  private wants = 0;
  private ended = false;

  /** Streams this peer may be offered (policies); set once the peer is known. */
  private offer: StreamFilter | undefined;

  constructor(private readonly log: BlockLog) {}

  /** Offer and send only streams `offer` allows (the authenticated peer's permissions). */
  restrict(offer: StreamFilter | undefined): void {
    this.offer = offer;
  }

  /** True once both sides said done (or equal), or the peer sent garbage. */
  get finished(): boolean {
    return this.ended || (this.sentDone && this.gotDone > this.wants);
  }

  /** The initiator's first message: `hello`, or a small `check` first with `probe`. */
  open(opts: { probe?: boolean } = {}): Uint8Array[] {
    return [this.out(opts.probe ? { type: 'check', digest: fromHex(this.log.headsDigest())! } : this.hello())];
  }

  /** Handles one message from the peer; returns the messages to send back, in order. */
  receive(bytes: Uint8Array): Uint8Array[] {
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
        if (hashHex(m.digest) === this.log.headsDigest()) return this.equal();
        return [this.out({ type: 'differ' })];
      case 'differ':
        return [this.out(this.hello())];
      case 'equal':
        this.stats.equal = true;
        this.ended = true;
        return [];
      case 'hello':
        if (hashHex(m.digest) === this.log.headsDigest()) return this.equal();
        return [this.out({ type: 'vector', vector: localVector(this.log, this.offer) }), ...this.wantFrom(m.vector), ...this.blocksFor(m.vector)];
      case 'vector':
        return [...this.wantFrom(m.vector), ...this.blocksFor(m.vector)];
      case 'want':
        return this.send(wholeStreams(this.log, m.streams, this.offer));
      case 'block': {
        const r = this.log.apply(m.envelope);
        if (r.status === 'applied') {
          this.stats.applied++;
          if (r.equivocation) this.stats.equivocations++;
        } else if (r.status === 'known') this.stats.known++;
        else this.stats.rejected.push(...r.faults);
        return [];
      }
      case 'done':
        this.gotDone++;
        return [];
    }
  }

  private hello(): SyncMessage {
    return { type: 'hello', digest: fromHex(this.log.headsDigest())!, vector: localVector(this.log, this.offer) };
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

  private blocksFor(theirs: readonly VectorEntry[]): Uint8Array[] {
    return this.send(missingFor(this.log, theirs, this.offer));
  }

  private send(hashes: readonly string[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const hash of hashes) {
      const envelope = this.log.getEnvelope(hash);
      if (envelope === undefined) continue;
      this.stats.blocksSent++;
      this.stats.blockBytesSent += envelope.length;
      out.push(this.out({ type: 'block', envelope }));
    }
    out.push(this.out({ type: 'done', count: this.stats.blocksSent }));
    this.sentDone = true;
    return out;
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
export async function exchange(a: BlockLog, b: BlockLog, opts: { probe?: boolean; aOffers?: StreamFilter; bOffers?: StreamFilter } = {}): Promise<ExchangeResult> {
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
  await Promise.all([a.durable(), b.durable()]);
  return { initiator: sa.stats, responder: sb.stats, flights };
}
