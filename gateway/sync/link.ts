/**
 * What every sync transport shares (tcp.ts, mqtt.ts): a link is an ordered,
 * reliable stream of whole messages; on it, mutual authentication by signed
 * challenge (protocols/sync.ts: auth-hello with key and nonce, then
 * auth-proof; a key not in `peers` is refused with auth-refused before any
 * sync message is read), then one exchange of the sync engine (engine.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  CAP_DEFLATE,
  capabilitiesOf,
  decodeAuthMessage,
  encodeAuthMessage,
  MAX_BLOCK_BYTES,
  MessageDeflater,
  MessageInflater,
  markCapabilities,
  NONCE_BYTES,
  packMessages,
  unpackMessages,
  syncAuthInput,
  toHex,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { BlockLog } from '../log/block-log.js';
import type { SpaceCheck } from '../store/free-space.js';
import { type StreamFilter, SyncSession, type SyncStats } from './engine.js';
import type { SignatureVerifier } from './intake.js';

/** The largest sync message: a block message (its envelope and CBOR head), with room to spare. */
export const MAX_SYNC_MESSAGE = MAX_BLOCK_BYTES + 1024;
/** A compressed link packs the messages sent together into one unit up to this many bytes. */
const UNIT_FLUSH = 16 * 1024;
/**
 * The largest unit: messages under UNIT_FLUSH, then one that may be the largest, with their
 * lengths (a message is at least 2 bytes, its length at most 4).
 */
const MAX_UNIT = MAX_SYNC_MESSAGE + 3 * UNIT_FLUSH + 4;
/**
 * The largest message a transport carries: a sync message, or a unit deflated, which can come
 * out a little larger than it (incompressible bytes: ≤ 0.25 % measured; 1/256 allowed).
 */
export const MAX_LINK_MESSAGE = MAX_UNIT + Math.ceil(MAX_UNIT / 256) + 64;

export interface LinkIdentity {
  readonly publicKey: Uint8Array;
  readonly sign: (message: Uint8Array) => Uint8Array;
  /** The X25519 secret of the same seed (Noise-encrypted TCP links). */
  readonly x25519Secret?: Uint8Array;
}

export interface LinkOptions {
  readonly log: BlockLog;
  readonly identity: LinkIdentity;
  /** Raw public keys of the sibling gateways allowed on this link. */
  readonly peers: Iterable<Uint8Array>;
  /** Give up on a silent link after this long (default 30 s). */
  readonly idleTimeoutMs?: number;
  /** The streams the authenticated peer (key hex) may be offered (policies); default: all. */
  readonly offerTo?: (peer: string) => StreamFilter | undefined;
  /** Free-space guard: while it says no, received blocks and marks are not applied. */
  readonly space?: SpaceCheck;
  /** Verifies received blocks' signatures on the worker pool (the gateway's); default: on this thread. */
  readonly verifier?: SignatureVerifier;
  /**
   * Offer link compression (protocols/link-deflate.ts; default true). It is used when both
   * sides offer it; false makes this side's challenge an older gateway's (all-random nonce).
   */
  readonly deflate?: boolean;
}

export class LinkError extends Error {
  constructor(
    readonly code: 'refused' | 'auth-failed' | 'protocol' | 'closed' | 'too-large' | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'LinkError';
  }
}

export interface LinkResult {
  readonly peer: string;
  readonly stats: SyncStats;
  /** Both sides offered compression, so the exchange's messages were deflated. */
  readonly deflate: boolean;
  /** Message bytes handed to and taken from the transport after the handshake (compressed when `deflate`). */
  readonly linkBytes: { readonly sent: number; readonly received: number };
}

export interface SyncLinkEvents {
  /** An answered link authenticated its peer (key hex); its exchange starts. */
  readonly onStart?: (peer: string) => void;
  /** A finished exchange (or a refused / failed link, with `error`). */
  readonly onLink?: (r: { peer?: string; stats?: SyncStats; error?: LinkError }) => void;
}

/** An ordered, reliable stream of whole messages between two gateways. */
export interface MessageLink {
  /**
   * Queues a message; returns a promise when the transport's buffer is full, resolved once
   * it drains (or the link is gone), so a sender of many blocks holds only a few in memory.
   */
  send(msg: Uint8Array): void | Promise<void>;
  /** The next message; rejects with LinkError once the link is gone. */
  next(): Promise<Uint8Array>;
  /** Closes the link (after what was sent is delivered, where the transport can tell). */
  end(): Promise<void>;
}

/** Received messages as an async queue (the receiving half of a MessageLink). */
export class MessageQueue {
  private readonly queue: Uint8Array[] = [];
  private waiter: ((v: Uint8Array | LinkError) => void) | undefined;
  private error_: LinkError | undefined;

  get failed(): LinkError | undefined {
    return this.error_;
  }

  /** Messages received and not yet taken (a transport pauses reading when this grows). */
  get size(): number {
    return this.queue.length;
  }

  push(msg: Uint8Array): void {
    if (this.error_) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(msg);
    } else this.queue.push(msg);
  }

  fail(e: LinkError): void {
    this.error_ ??= e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(e);
    }
  }

  next(): Promise<Uint8Array> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.error_) return Promise.reject(this.error_);
    return new Promise((resolve, reject) => {
      this.waiter = (v) => (v instanceof LinkError ? reject(v) : resolve(v));
    });
  }
}

/** An authenticated peer: its key (hex), and whether both sides offered compression. */
export interface Authenticated {
  readonly peer: string;
  readonly deflate: boolean;
}

/** Mutual authentication; resolves with the peer or throws LinkError after refusing. */
export async function authenticate(link: MessageLink, opts: LinkOptions): Promise<Authenticated> {
  const known = new Set([...opts.peers].map(toHex));
  const offer = opts.deflate !== false;
  const nonce = offer ? markCapabilities(randomBytes(NONCE_BYTES), CAP_DEFLATE) : randomBytes(NONCE_BYTES);
  await link.send(encodeAuthMessage({ type: 'auth-hello', publicKey: opts.identity.publicKey, nonce }));
  const h = decodeAuthMessage(await link.next());
  if (!h.ok) throw new LinkError('protocol', h.error.message);
  if (h.value.type === 'auth-refused') throw new LinkError('refused', `peer refused: ${h.value.reason}`);
  if (h.value.type !== 'auth-hello') throw new LinkError('protocol', 'expected auth-hello');
  const peer = h.value.publicKey;
  const peerHex = toHex(peer);
  if (!known.has(peerHex)) {
    await link.send(encodeAuthMessage({ type: 'auth-refused', reason: 'unknown gateway' }));
    await link.end();
    throw new LinkError('refused', `unknown gateway ${peerHex}`);
  }
  await link.send(
    encodeAuthMessage({
      type: 'auth-proof',
      signature: opts.identity.sign(syncAuthInput(opts.identity.publicKey, peer, h.value.nonce, nonce)),
    }),
  );
  const p = decodeAuthMessage(await link.next());
  if (!p.ok) throw new LinkError('protocol', p.error.message);
  if (p.value.type === 'auth-refused') throw new LinkError('refused', `peer refused: ${p.value.reason}`);
  if (
    p.value.type !== 'auth-proof' ||
    !verifyEd25519(peer, syncAuthInput(peer, opts.identity.publicKey, nonce, h.value.nonce), p.value.signature)
  ) {
    await link.send(encodeAuthMessage({ type: 'auth-refused', reason: 'bad proof' }));
    await link.end();
    throw new LinkError('auth-failed', `gateway ${peerHex} did not prove its key`);
  }
  // Both nonces are signed in both proofs, so neither side's offer can be stripped unnoticed.
  return { peer: peerHex, deflate: offer && (capabilitiesOf(h.value.nonce) & CAP_DEFLATE) !== 0 };
}

/**
 * A link whose messages are compressed (protocols/link-deflate.ts), once both sides agreed in
 * the challenge: messages sent together (the session's answers come in runs) are packed into
 * one unit, flushed at UNIT_FLUSH bytes or on the next turn of the event loop, so small
 * messages share a zlib call and a transport message. Counts what the transport carries. A unit
 * that is not valid DEFLATE, not a unit, or inflates past MAX_UNIT ends the link.
 */
class CountedLink implements MessageLink {
  sent = 0;
  received = 0;
  private readonly deflater: MessageDeflater | undefined;
  private readonly inflater: MessageInflater | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private readonly inbox: Uint8Array[] = [];

  constructor(
    private readonly inner: MessageLink,
    deflate: boolean,
  ) {
    this.deflater = deflate ? new MessageDeflater() : undefined;
    this.inflater = deflate ? new MessageInflater(MAX_UNIT) : undefined;
  }

  send(msg: Uint8Array): void | Promise<void> {
    if (!this.deflater) {
      this.sent += msg.length;
      return this.inner.send(msg);
    }
    this.pending.push(msg);
    this.pendingBytes += msg.length;
    if (this.pendingBytes >= UNIT_FLUSH) return this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        // A transport that failed meanwhile: the reader reports it (the writer stops at its next send).
        this.flush()?.catch(() => {});
      });
    }
  }

  /** Sends what is pending as one unit. */
  flush(): void | Promise<void> {
    if (!this.deflater || this.pending.length === 0) return;
    const unit = this.deflater.deflate(packMessages(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
    this.sent += unit.length;
    return this.inner.send(unit);
  }

  async next(): Promise<Uint8Array> {
    const queued = this.inbox.shift();
    if (queued) return queued;
    const bytes = await this.inner.next();
    this.received += bytes.length;
    if (!this.inflater) return bytes;
    const r = this.inflater.inflate(bytes);
    const msgs = r.ok ? unpackMessages(r.value) : r;
    if (msgs.ok) {
      this.inbox.push(...msgs.value.slice(1));
      return msgs.value[0]!;
    }
    // The peer's refusal of our proof comes plain (it is sent by its handshake): said as such.
    const refusal = bytes.length < 256 ? decodeAuthMessage(bytes) : undefined;
    if (refusal?.ok && refusal.value.type === 'auth-refused')
      throw new LinkError('refused', `peer refused: ${refusal.value.reason}`);
    throw new LinkError(msgs.error.code === 'link/deflate-too-large' ? 'too-large' : 'protocol', msgs.error.message);
  }

  async end(): Promise<void> {
    await Promise.resolve(this.flush()).catch(() => {}); // on a dead transport there is nothing to save
    return this.inner.end();
  }
}

/**
 * Runs one side of an exchange until both sides are done. Reading and writing run
 * side by side: the reader applies what arrives and queues the session's (lazy) answers,
 * the writer sends them, waiting whenever the transport is full. So neither side's
 * memory grows with the difference, and two sides streaming blocks to each other at
 * once cannot deadlock (each keeps reading while its own sends wait).
 */
async function runSession(link: CountedLink, session: SyncSession, first: Uint8Array[]): Promise<void> {
  const outbox: Iterable<Uint8Array>[] = [first];
  let wake: (() => void) | undefined;
  let readerDone = false;
  let stop = false;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const writer = (async () => {
    for (;;) {
      const it = outbox.shift();
      if (it === undefined) {
        if (readerDone) return;
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      for (const m of it) {
        if (stop) return;
        const full = link.send(m);
        if (full instanceof Promise) await full;
      }
    }
  })();
  try {
    while (!session.peerFinished) {
      const msg = await link.next();
      // The peer may still refuse after the handshake (our proof did not verify on its side).
      if (msg.length < 256) {
        const refusal = decodeAuthMessage(msg);
        if (refusal.ok && refusal.value.type === 'auth-refused')
          throw new LinkError('refused', `peer refused: ${refusal.value.reason}`);
      }
      outbox.push(session.receive(msg));
      poke();
      // Blocks waiting on the verify pool past the bound: read on once they are applied.
      await session.backlog();
    }
    await session.settled();
  } catch (err) {
    // The writer may be waiting on a transport that will never drain (the peer is gone or
    // stopped reading): it stops at its next message; the caller ends the link.
    stop = true;
    readerDone = true;
    poke();
    // The writer's failure is the link's, which the reader's error below already reports.
    writer.catch(() => {});
    // Blocks received before the cut are still applied (they stand alone), before the caller goes on.
    await session.settled().catch(() => {});
    throw err;
  }
  readerDone = true;
  poke();
  await writer;
  await link.flush();
  if (session.stats.protocolError) throw new LinkError('protocol', session.stats.protocolError);
}

/**
 * Seals this gateway's open journal blocks before the exchange, so the sibling gets every frame
 * held here. Not while the disk is below the floor: sealing would wait for space (the ingest
 * commit loop defers authoring), and the frames go with a later exchange.
 */
async function sealFirst(opts: LinkOptions): Promise<void> {
  if (opts.space?.writable() !== false) await opts.log.sealOpen();
}

/** The dialing side over an open link: authenticate, one exchange as the initiator, durable. */
export async function initiate(link: MessageLink, opts: LinkOptions & { probe?: boolean }): Promise<LinkResult> {
  try {
    const { peer, deflate } = await authenticate(link, opts);
    await sealFirst(opts);
    const session = new SyncSession(opts.log, opts.space, opts.verifier);
    session.restrict(opts.offerTo?.(peer));
    const counted = new CountedLink(link, deflate);
    await runSession(counted, session, session.open({ probe: opts.probe ?? false }));
    await opts.log.durable();
    return { peer, stats: session.stats, deflate, linkBytes: { sent: counted.sent, received: counted.received } };
  } finally {
    await link.end();
  }
}

/** The answering side over an accepted link; reports through `onLink`, never throws. */
export async function respond(
  link: MessageLink,
  opts: LinkOptions & SyncLinkEvents,
  onError?: () => void,
): Promise<void> {
  let peer: string | undefined;
  const session = new SyncSession(opts.log, opts.space, opts.verifier);
  try {
    const a = await authenticate(link, opts);
    peer = a.peer;
    opts.onStart?.(peer);
    await sealFirst(opts);
    session.restrict(opts.offerTo?.(peer));
    await runSession(new CountedLink(link, a.deflate), session, []);
    await opts.log.durable();
    opts.onLink?.({ peer, stats: session.stats });
  } catch (err) {
    // A link cut after its blocks were applied loses nothing: they are queued and become durable.
    const e = err instanceof LinkError ? err : new LinkError('protocol', String(err));
    opts.onLink?.({ ...(peer !== undefined && { peer }), stats: session.stats, error: e });
    onError?.();
  }
}
