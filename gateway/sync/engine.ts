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
  encodeSyncMessage,
  fromHex,
  hashHex,
  type SyncMessage,
  toHex,
  type VectorEntry,
} from '../../protocols/index.js';
import type { ApplyResult, BlockLog } from '../log/block-log.js';
import type { Fault } from '../log/verify.js';
import type { SpaceCheck } from '../store/free-space.js';
import { BlockIntake, type SignatureVerifier } from './intake.js';
import { missingLink, onlyMissingLinks, Parked } from './parked.js';
import { localVector, orderedBlocks, planFor, type StreamFilter, type StreamPlan, wantsFrom } from './plan.js';

export { localVector, type StreamFilter } from './plan.js';

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
  /** `done` messages whose preceding blocks are applied (`gotDone` counts them on arrival). */
  private doneApplied = 0;
  private ended = false;
  /** Blocks waiting for a link that the streams we asked for should bring. */
  private readonly parked = new Parked();
  /** The peer's vector (for its marks when answering a want). */
  private peerVector: readonly VectorEntry[] = [];

  /** Streams this peer may be offered (policies); set once the peer is known. */
  private offer: StreamFilter | undefined;

  /** Received blocks verified on the worker pool and applied in order (intake.ts); without one, each is applied as it comes. */
  private readonly intake: BlockIntake | undefined;

  constructor(
    private readonly log: BlockLog,
    /** Free-space guard: while it says no, blocks and marks are not applied (nothing written). */
    private readonly space?: SpaceCheck,
    /** Verifies received blocks' signatures off the main thread (the gateway's verify pool). */
    verifier?: SignatureVerifier,
  ) {
    this.intake =
      verifier &&
      new BlockIntake(log, verifier, (r, env) => {
        const released = this.settle(r, env);
        if (released.length > 0) this.applyBlocks(released);
      });
  }

  /**
   * With a verifier, blocks received wait for their signatures: while too many bytes of them
   * do, a promise to wait on before taking more messages (bounded memory, pushing back on the peer).
   */
  backlog(): Promise<void> | undefined {
    return this.intake?.backlog();
  }

  /** Resolves once every block received is applied (at once without a verifier). */
  async settled(): Promise<void> {
    await this.intake?.settled();
  }

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
        // After the blocks received before it: a raised mark prunes below it.
        if (this.intake) this.intake.after(() => this.acceptMark(m.envelope));
        else this.acceptMark(m.envelope);
        return [];
      }
      case 'block':
        // Low disk: not applied, so lmdb never meets ENOSPC; our heads stay behind, so the next exchange resends it.
        if (this.lowDisk()) return [];
        if (this.intake) this.intake.push(m.envelope);
        else this.applyBlocks([m.envelope]);
        return [];
      case 'done':
        this.gotDone++;
        // Parked blocks wait for the blocks the peer sent before its done, so with an intake
        // only once those are applied.
        if (this.intake) this.intake.after(() => this.peerDone());
        else this.peerDone();
        return [];
    }
  }

  private acceptMark(envelope: Uint8Array): void {
    const r = this.log.acceptMark(envelope);
    if (r.status === 'raised') this.stats.marks++;
    else if (r.status === 'rejected') this.stats.rejected.push(...r.faults);
  }

  /** Applies blocks, and those parked on each one applied. */
  private applyBlocks(queue: Uint8Array[]): void {
    for (let env = queue.pop(); env !== undefined; env = queue.pop())
      queue.push(...this.settle(this.log.apply(env), env));
  }

  /**
   * Counts a block's result; returns the blocks parked on it, now to apply. While streams we
   * asked for (`want`) are to come, a block refused only for a missing `prev` or parent waits
   * for it (parked.ts).
   */
  private settle(r: ApplyResult, env: Uint8Array): Uint8Array[] {
    if (r.status === 'applied') {
      this.stats.applied++;
      if (r.equivocation) this.stats.equivocations++;
      return this.parked.release(r.hash);
    }
    if (r.status === 'known') this.stats.known++;
    else if (r.status === 'pruned') this.stats.pruned++;
    else {
      const waiting = this.wants > 0 && !this.linksDone;
      const missing = waiting && onlyMissingLinks(r.faults) ? missingLink(env, this.held) : undefined;
      if (missing === undefined || !this.parked.hold(missing, env)) this.stats.rejected.push(...r.faults);
    }
    return [];
  }

  /** The peer's `done`, once the blocks it sent before it are applied. */
  private peerDone(): void {
    this.doneApplied++;
    if (this.linksDone && this.parked.size > 0) this.unpark();
  }

  /** Every answer to our wants applied (or the session ended): nothing more to wait for. */
  private get linksDone(): boolean {
    return this.ended || this.doneApplied > this.wants;
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
 * the reference for transports): messages are passed as bytes, flight by flight, each
 * flight's blocks applied before the answer goes (`verifier`: both sides verify on it).
 * Waits for both logs' writes to be durable.
 */
export async function exchange(
  a: BlockLog,
  b: BlockLog,
  opts: { probe?: boolean; aOffers?: StreamFilter; bOffers?: StreamFilter; verifier?: SignatureVerifier } = {},
): Promise<ExchangeResult> {
  const sa = new SyncSession(a, undefined, opts.verifier);
  const sb = new SyncSession(b, undefined, opts.verifier);
  sa.restrict(opts.aOffers);
  sb.restrict(opts.bOffers);
  let flight = sa.open(opts);
  let flights = 0;
  let toB = true;
  while (flight.length > 0) {
    flights++;
    const next: Uint8Array[] = [];
    const to = toB ? sb : sa;
    for (const m of flight) {
      next.push(...to.receive(m));
      await to.backlog();
    }
    await to.settled();
    flight = next;
    toB = !toB;
  }
  // Prunes started by marks are finished too, so digests and views can be compared.
  await Promise.all([a.settled(), b.settled()]);
  return { initiator: sa.stats, responder: sb.stats, flights };
}
