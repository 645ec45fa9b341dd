/**
 * The block log in lmdb, next to the frames in the same environment, so a
 * frames block and the frames it carries commit in one transaction.
 *
 *   log-blocks   hash → signed envelope `[block bytes, signature]`
 *   log-index    hash → {author, stream, seq, lamport, kind, frames}
 *   log-chain    [author, stream, seq, hash] → 1   (two hashes at one seq = equivocation)
 *   log-heads    [author, stream] → {seq, hashes, lamport}
 *   log-equivoc  [author, stream, seq] → time first seen
 *   log-view     [device, boot, seq] → [hash, index]  frames view across authors (view.ts)
 *   log-copies   [device, boot, seq, hash, index] → rxTime  every copy held (view.ts)
 *   log-meta     'lamport' → this gateway's lamport clock
 *   log-devices  [device, key hex] → hash of the enrolment block (keys enrolled through the log)
 *   log-revoked, log-enrolled  revocation state per (device, key) (revocations.ts)
 *   log-low      [author, stream] → {low, envelope}  low-water marks and the retention block behind each
 *
 * Retention: a stream's author logs a retention block (kind 6) naming a low-water mark in
 * the same stream; every replica that holds it or receives it (sync `mark`) prunes the
 * stream's frames and retention blocks below the mark (enrolment and other registry blocks
 * are kept), with their index, chain, copies, view entries and the frames this gateway
 * stored for them, in one transaction once what came before is durable. A block below a
 * mark is answered `pruned`; the first kept block's missing `prev` is accepted.
 *
 * Authors are hex public keys, hashes hex. Reads in lmdb-js see committed data
 * only, so what was queued but is not yet durable is kept in small `pending`
 * maps until its transaction lands.
 */
import { type Database, IF_EXISTS } from 'lmdb';
import {
  type Block,
  blockSigningInput,
  type EnrolmentBody,
  encodeCanonical,
  type FrameEntry,
  hashHex,
  MAX_BLOCK_FRAMES,
  MAX_PARENTS,
  sha256,
  type SignedBlock,
  signBlock,
  decodeSignedBlock,
  toHex,
  fromHex,
  fail,
  type Result,
} from '../../protocols/index.js';
import type { DeviceRecord, Store } from '../store/store.js';
import { type BlockRef, type Fault, frameId, verifyFrames, verifyHeader, type VerifyContext } from './verify.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { Revocations } from './revocations.js';
import { type LogInternals, type MarkRecord, Marks, PRUNABLE_KINDS } from './marks.js';
import { FramesView, type ViewEntry, type ViewTicket } from './view.js';

export { type MarkRecord, PRUNABLE_KINDS } from './marks.js';

export type { ViewEntry } from './view.js';
import type { BlockCrypto } from './sealing.js';

/** The one policy (and stream) frames are written under until policies exist. */
export const DEFAULT_POLICY = 'default';
/** A block's `policy` is `name@version` (or a bare name); its stream is the name, so a stream stays one policy across versions. */
export const policyStream = (policy: string): string => {
  const at = policy.lastIndexOf('@');
  return at > 0 ? policy.slice(0, at) : policy;
};

export interface IndexRecord extends BlockRef {
  readonly kind: Block['kind'];
  /** Frames in the block (0 for other kinds). */
  readonly frames: number;
  /** Latest receive time of its frames (frames blocks; absent in stores written before retention). */
  readonly time?: number;
}

export interface HeadRecord {
  readonly seq: number;
  /** Sorted; more than one when the author equivocated at this seq. */
  readonly hashes: string[];
  readonly lamport: number;
}

export interface StreamHead extends HeadRecord {
  readonly author: string;
  readonly stream: string;
}

export type ApplyResult =
  | { readonly status: 'applied'; readonly hash: string; readonly equivocation: boolean }
  | { readonly status: 'known'; readonly hash: string }
  /** Below the stream's low-water mark: not kept, and not a fault. */
  | { readonly status: 'pruned'; readonly hash: string }
  | { readonly status: 'rejected'; readonly hash?: string; readonly faults: readonly Fault[] };

export interface BlockLogOptions {
  /** The gateway's raw Ed25519 public key and signer (blocks are authored with them). */
  readonly publicKey: Uint8Array;
  readonly sign: (message: Uint8Array) => Uint8Array;
  /** Other gateways whose blocks are accepted (this gateway is always known). */
  readonly knownAuthors?: Iterable<Uint8Array>;
  /**
   * A device's registry record (default: the store's device table). Frames of a device are
   * verified under its registry key, or, for a device not enrolled here, under the keys
   * enrolled by enrolment blocks in the log;
   * before this gateway first logs frames of a device, it logs the device's enrolment, so a
   * sibling that never enrolled the device can still verify them.
   */
  readonly deviceRecord?: (device: string) => DeviceRecord | undefined;
  /** Confidential policies (sealing.ts): seals authored blocks, opens held ones where it has the key. */
  readonly crypto?: BlockCrypto;
  /**
   * How long this gateway keeps its own blocks of a stream (ms), or undefined to keep them
   * forever (the default). Read by `retainByAge`; per-policy durations plug in here.
   */
  readonly retentionFor?: (stream: string) => number | undefined;
  /**
   * Policies withhold streams from some siblings (gateway/policy/sync-filter.ts), so a block's
   * `parents` (other streams' heads) may never arrive here: a missing parent is then no fault;
   * and each of this gateway's streams carries the enrolments of its own devices.
   */
  readonly withheldParentsOk?: boolean;
  /**
   * Most blocks one retention mark prunes (default 512): a prune is one transaction, so a
   * store that enables retention over a long history catches up a bounded step per tick.
   */
  readonly maxPrunePerMark?: number;
}

const headKey = (author: string, stream: string): string => `${author}/${stream}`;

export class BlockLog {
  readonly author: string;
  private readonly blocks: Database<Buffer, string>;
  private readonly index: Database<IndexRecord, string>;
  private readonly chain: Database<number, [string, string, number, string]>;
  private readonly headsDb: Database<HeadRecord, [string, string]>;
  private readonly equivocDb: Database<number, [string, string, number]>;
  private readonly frameView_: FramesView;
  private readonly meta: Database<number, string>;
  /** Every stream head, authoritative (loaded once, then kept in step with writes). */
  private readonly heads = new Map<string, StreamHead>();
  private readonly known = new Set<string>();
  private lamport: number;
  /** Own streams found forked (reported in `ownForks()`). */
  private readonly forkedOwn = new Set<string>();
  private readonly blockListeners = new Set<(sb: SignedBlock) => void>();
  /** Heads already named as parents by one of our blocks (so each is named once). */
  private readonly referenced = new Set<string>();
  // Queued, not yet durable.
  private readonly pendingIndex = new Map<string, IndexRecord>();
  private readonly pendingChain = new Map<string, Set<string>>();
  private readonly revocations: Revocations;
  /** Low-water marks and pruning (marks.ts). */
  private readonly marks: Marks;
  /** Prunes and view recomputes, run one at a time once what was queued before them is durable. */
  private maintenance: Promise<void> = Promise.resolve();
  private readonly deviceRecordFn: (device: string) => DeviceRecord | undefined;
  /** [device, key] → enrolment block; [device, key, stream] → this gateway's enrolment block in its own stream. */
  private readonly devicesDb: Database<string, [string, string] | [string, string, string]>;
  private readonly pendingDevices = new Map<string, Set<string>>();
  /** `device\0key\0stream` of own enrolment blocks not yet durable. */
  private readonly pendingOwnEnrolments = new Set<string>();
  readonly ctx: VerifyContext;

  constructor(
    private readonly store: Store,
    private readonly opts: BlockLogOptions,
  ) {
    const root = store.root;
    this.blocks = root.openDB({ name: 'log-blocks', encoding: 'binary' });
    this.index = root.openDB({ name: 'log-index' });
    this.chain = root.openDB({ name: 'log-chain' });
    this.headsDb = root.openDB({ name: 'log-heads' });
    this.equivocDb = root.openDB({ name: 'log-equivoc' });
    this.meta = root.openDB({ name: 'log-meta' });
    this.revocations = new Revocations(root, (p) => store.track(p));
    this.frameView_ = new FramesView(root, (p) => store.track(p), (d) => this.revokedSince(d));
    this.author = toHex(opts.publicKey);
    this.known.add(this.author);
    for (const k of opts.knownAuthors ?? []) this.known.add(toHex(k));
    for (const { key, value } of this.headsDb.getRange()) this.heads.set(headKey(key[0], key[1]), { author: key[0], stream: key[1], ...value });
    this.lamport = this.meta.get('lamport') ?? 0;
    this.devicesDb = root.openDB({ name: 'log-devices' });
    this.deviceRecordFn = opts.deviceRecord ?? ((device) => store.devices.get(device));
    this.marks = new Marks(root, this.internals());
    if (this.frameView_.needsRebuild()) this.rebuildCopies();
    // A prune cut short (crash, disk full) is finished now.
    for (const [author, stream] of this.marks.streams()) this.schedulePrune(author, stream);
    this.ctx = {
      isKnownAuthor: (a) => this.known.has(toHex(a)),
      // The local registry decides for devices it knows: a sibling's enrolment cannot put
      // another key on a device enrolled here. Only devices unknown here take logged keys.
      deviceKeys: (d) => {
        const own = this.registryKeys(d);
        return own.length > 0 ? own : this.loggedKeys(d).map((k) => fromHex(k)!);
      },
      lookup: (h) => this.lookup(h),
      mark: (a, st) => this.mark(a, st),
      danglingParentsOk: () => this.marks.size > 0 || this.withheldParentsOk,
    };
    // Key wraps already held (nothing secret is stored: keys are unwrapped again at each start).
    if (opts.crypto) for (const h of this.hashesOfKind('keys')) {
      const d = decodeSignedBlock(this.getEnvelope(h) ?? new Uint8Array());
      if (d.ok) opts.crypto.observe(d.value.block);
    }
  }

  /** Trusts another gateway's key (from the sibling list). */
  addKnownAuthor(publicKey: Uint8Array): void {
    this.known.add(toHex(publicKey));
  }

  /** The local registry's key for a device, if enrolled here. */
  registryKeys(device: string): Uint8Array[] {
    const rec = this.deviceRecordFn(device);
    const k = rec ? fromHex(rec.publicKey) : undefined;
    return k ? [k] : [];
  }

  /** Keys (hex) enrolled for a device by enrolment blocks in the log. */
  /** Whether this gateway logged an enrolment of (device, key) in its own `stream`. */
  private enrolledInOwn(device: string, key: string, stream: string): boolean {
    return this.pendingOwnEnrolments.has(`${device}\u0000${key}\u0000${stream}`) || this.devicesDb.doesExist([device, key, stream]);
  }

  loggedKeys(device: string): string[] {
    const out = new Set(this.pendingDevices.get(device) ?? []);
    for (const k of this.devicesDb.getKeys({ start: [device], end: [device + '\u0000'] })) if (k[0] === device) out.add(k[1]);
    return [...out];
  }

  lookup(hash: string): IndexRecord | undefined {
    return this.pendingIndex.get(hash) ?? this.index.get(hash);
  }

  /** The signed envelope of a block, if held. */
  getEnvelope(hash: string): Uint8Array | undefined {
    const b = this.blocks.get(hash);
    return b === undefined ? undefined : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Hashes held at one (author, stream, seq): one normally, two or more after an equivocation. */
  hashesAt(author: string, stream: string, seq: number): string[] {
    const out = new Set(this.pendingChain.get(`${author}/${stream}/${seq}`) ?? []);
    for (const k of this.chain.getKeys({ start: [author, stream, seq], end: [author, stream, seq + 1] })) out.add(k[3]);
    return [...out].sort();
  }

  /**
   * Authors frames blocks for frames this gateway stored in one ingest batch
   * (one block per policy; more if the batch holds over MAX_BLOCK_FRAMES), and
   * queues them in the current transaction. Call in the same event-loop turn
   * as the frames' own writes.
   */
  appendFrames(frames: readonly FrameEntry[], policy = DEFAULT_POLICY): SignedBlock[] {
    const out: SignedBlock[] = [];
    // A device's enrolment goes into the log before its first frames (same stream, so prev order).
    const devices = new Set<string>();
    for (const f of frames) {
      const id = frameId(f.frame);
      if (id) devices.add(id.device);
    }
    for (const d of devices) {
      const rec = this.deviceRecordFn(d);
      // Logged already (under policies: in this stream, since siblings may get only some
      // streams and each must carry the enrolments of its devices), unless the log says this
      // key is revoked and the registry enrolled it again since.
      const logged = this.withheldParentsOk ? this.enrolledInOwn(d, rec?.publicKey ?? '', policyStream(policy)) : rec !== undefined && this.loggedKeys(d).includes(rec.publicKey);
      if (!rec || (logged && (rec.revokedAt !== undefined || this.revocations.revokedAt(d, rec.publicKey) === undefined))) continue;
      const body: EnrolmentBody = {
        device: d,
        publicKey: fromHex(rec.publicKey)!,
        enrolledAt: rec.enrolledAt,
        ...(rec.revokedAt !== undefined && { revokedAt: rec.revokedAt }),
        ...(rec.site !== undefined && { site: rec.site }),
        ...(rec.model !== undefined && { model: rec.model }),
        ...(rec.name !== undefined && { name: rec.name }),
      };
      out.push(this.author_({ kind: 'enrolment', body }, policy));
    }
    // Key wraps first (same stream), so every holder of the data holds its key blocks before it.
    for (const c of this.opts.crypto?.beforeAppend(policy) ?? []) out.push(this.author_(c, policy));
    for (let i = 0; i < frames.length; i += MAX_BLOCK_FRAMES) {
      out.push(this.author_({ kind: 'frames', body: frames.slice(i, i + MAX_BLOCK_FRAMES) }, policy));
    }
    return out;
  }

  /**
   * Authors one block of any kind (policy grants, …) on this gateway's stream for `policy`
   * and queues it in the current transaction.
   */
  appendBlock(content: Pick<Block, 'kind' | 'body'>, policy: string): SignedBlock {
    return this.author_(content, policy);
  }

  /** Calls `fn` with every block (authored or applied) once it is durable; returns an unsubscribe. */
  onDurableBlock(fn: (sb: SignedBlock) => void): () => void {
    this.blockListeners.add(fn);
    return () => this.blockListeners.delete(fn);
  }

  /** Authors one block of any kind on this gateway's stream for `policy` (`name@version`: the stream is the name). */
  private author_(content: Pick<Block, 'kind' | 'body'>, policy: string): SignedBlock {
    const stream = policyStream(policy);
    const head = this.heads.get(headKey(this.author, stream));
    const parents: Uint8Array[] = [];
    let lamport = Math.max(this.lamport, head?.lamport ?? 0);
    for (const h of this.heads.values()) {
      if (h.author === this.author && h.stream === stream) continue;
      for (const hash of h.hashes) {
        if (this.referenced.has(hash) || parents.length >= MAX_PARENTS) continue;
        parents.push(fromHex(hash)!);
        this.referenced.add(hash);
        lamport = Math.max(lamport, h.lamport);
      }
    }
    // Our own stream forked (this key authored twice at one seq: a restored gateway that could
    // not reach its siblings first). Both branches are kept and flagged; continue on the least
    // hash so every replica sees the same continuation, rather than refusing to ingest.
    if (head !== undefined && head.hashes.length !== 1) this.forkedOwn.add(stream);
    const block = {
      author: this.opts.publicKey,
      stream,
      seq: head === undefined ? 0 : head.seq + 1,
      lamport: lamport + 1,
      prev: head === undefined ? null : fromHex(head.hashes[0]!)!,
      parents,
      policy,
      ...content,
    } as Block;
    // A mark stays readable by every holder of the stream (they must all prune alike).
    const sb = signBlock(block.kind === 'retention' ? block : (this.opts.crypto?.seal(block) ?? block), this.opts.sign);
    this.put(sb, block);
    return sb;
  }

  /**
   * Verifies a block received from a sibling and, if sound, queues it. A block
   * already held is `known`; a block at an (author, stream, seq) that holds a
   * different block is applied and flagged as an equivocation.
   */
  apply(envelope: Uint8Array): ApplyResult {
    const d = decodeSignedBlock(envelope);
    if (!d.ok) return { status: 'rejected', faults: [{ code: 'malformed', block: toHex(sha256(envelope)), detail: `${d.error.code}: ${d.error.message}` }] };
    const sb = d.value;
    const hash = hashHex(sb.hash);
    if (this.lookup(hash) !== undefined) return { status: 'known', hash };
    if (sb.block.seq < this.mark(toHex(sb.block.author), sb.block.stream) && PRUNABLE_KINDS.has(sb.block.kind)) return { status: 'pruned', hash };
    // Header first: no device signature work for a block its author did not sign.
    let faults = verifyHeader(sb, this.ctx);
    // A sealed block is checked inside where this gateway can open it; chain and signature only, elsewhere.
    const plain = this.readable(sb.block);
    if (faults.length === 0) faults = verifyFrames({ ...sb, block: plain }, this.ctx);
    if (faults.length > 0) return { status: 'rejected', hash, faults };
    // Chained onto a block whose transaction has not landed: written only if that block is on
    // disk when this one commits (lmdb checks inside the commit). Else a failed commit (disk
    // full) then a good one would leave this block above a hole no sync fills, its stream's head
    // already matching the siblings' (found by test/chaos). Skipped, it is forgotten and resent.
    const prev = sb.block.prev === null ? undefined : hashHex(sb.block.prev);
    if (prev !== undefined && this.pendingIndex.has(prev)) {
      let equivocation = false;
      const landed = this.blocks.ifVersion(prev, IF_EXISTS, () => void (equivocation = this.put(sb, plain)));
      this.store.track(landed);
      void landed.then((written) => written || this.reloadHeads(), () => undefined);
      return { status: 'applied', hash, equivocation };
    }
    const equivocation = this.put(sb, plain);
    return { status: 'applied', hash, equivocation };
  }

  /** Queues a verified block and everything derived from it; returns whether it equivocates. */
  private put(sb: SignedBlock, plain: Block = this.readable(sb.block)): boolean {
    const b = plain; // the opened block, for a sealed one this gateway can read
    this.opts.crypto?.observe(b);
    const hash = hashHex(sb.hash);
    const author = toHex(b.author);
    const rec: IndexRecord = {
      author,
      stream: b.stream,
      seq: b.seq,
      lamport: b.lamport,
      kind: sb.block.kind,
      frames: b.kind === 'frames' ? b.body.length : 0,
      ...(b.kind === 'frames' && { time: b.body.reduce((m, f) => Math.max(m, f.rxTime), 0) }),
    };
    const track = (p: Promise<unknown>): void => this.store.track(p);
    const others = this.hashesAt(author, b.stream, b.seq);
    const equivocation = others.length > 0;
    track(this.blocks.put(hash, Buffer.from(sb.envelope.buffer, sb.envelope.byteOffset, sb.envelope.byteLength)));
    track(this.index.put(hash, rec));
    track(this.chain.put([author, b.stream, b.seq, hash], 1));
    if (equivocation) track(this.equivocDb.put([author, b.stream, b.seq], Date.now()));
    const chainKey = `${author}/${b.stream}/${b.seq}`;
    let set = this.pendingChain.get(chainKey);
    if (!set) this.pendingChain.set(chainKey, (set = new Set()));
    set.add(hash);
    this.pendingIndex.set(hash, rec);
    // Head: the highest seq of the stream (every hash held there, if it forked).
    const hk = headKey(author, b.stream);
    const head = this.heads.get(hk);
    let next: StreamHead | undefined;
    if (head === undefined || b.seq > head.seq) next = { author, stream: b.stream, seq: b.seq, hashes: [hash], lamport: b.lamport };
    else if (b.seq === head.seq) next = { ...head, hashes: [...head.hashes, hash].sort(), lamport: Math.max(head.lamport, b.lamport) };
    if (next) {
      this.heads.set(hk, next);
      track(this.headsDb.put([author, b.stream], { seq: next.seq, hashes: next.hashes, lamport: next.lamport }));
    }
    if (b.lamport > this.lamport) {
      this.lamport = b.lamport;
      track(this.meta.put('lamport', this.lamport));
    }
    if (b.kind === 'enrolment') {
      const key = toHex(b.body.publicKey);
      let set = this.pendingDevices.get(b.body.device);
      if (!set) this.pendingDevices.set(b.body.device, (set = new Set()));
      set.add(key);
      track(this.devicesDb.put([b.body.device, key], hash));
      const device = b.body.device;
      if (author === this.author) {
        const own = `${device}\u0000${key}\u0000${b.stream}`;
        this.pendingOwnEnrolments.add(own);
        track(this.devicesDb.put([device, key, b.stream], hash));
        const drop = (): void => void this.pendingOwnEnrolments.delete(own);
        void this.store.durable().then(drop, drop);
      }
      void this.store.durable().then(
        () => this.pendingDevices.get(device)?.delete(key),
        () => this.pendingDevices.get(device)?.delete(key),
      );
      if (this.revocations.note(device, key, b.body.enrolledAt, b.body.revokedAt)) this.revocationChanged(device, key);
    }
    if (b.kind === 'retention') this.raiseMark(author, b.stream, b.body.low, sb.envelope);
    // The least (hash, index) wins, so the view does not depend on arrival order.
    const ticket = FramesView.ticket();
    if (b.kind === 'frames') this.frameView_.add(ticket, hash, b.body);
    // Once durable, reads see it: drop it from the pending maps.
    void this.store.durable().then(
      () => {
        this.settle(hash, rec, chainKey, ticket);
        // A conditional write (apply) may have been skipped: only blocks on disk are announced.
        if (this.blockListeners.size > 0 && this.blocks.doesExist(hash)) for (const l of this.blockListeners) l(sb);
      },
      () => this.rollback(hash, chainKey, ticket),
    );
    return equivocation;
  }

  private settle(hash: string, rec: IndexRecord, chainKey: string, ticket: ViewTicket): void {
    if (this.pendingIndex.get(hash) === rec) this.pendingIndex.delete(hash);
    const set = this.pendingChain.get(chainKey);
    set?.delete(hash);
    if (set?.size === 0) this.pendingChain.delete(chainKey);
    this.frameView_.settle(ticket);
  }

  /** The transaction failed (disk full): forget what it held and reload the heads from disk. */
  private rollback(hash: string, chainKey: string, ticket: ViewTicket): void {
    this.pendingIndex.delete(hash);
    this.pendingChain.get(chainKey)?.delete(hash);
    this.frameView_.settle(ticket);
    this.reloadHeads();
  }

  /** Heads as on disk (after a failed or skipped write). */
  private reloadHeads(): void {
    this.heads.clear();
    for (const { key, value } of this.headsDb.getRange()) this.heads.set(headKey(key[0], key[1]), { author: key[0], stream: key[1], ...value });
    this.lamport = Math.max(this.lamport, this.meta.get('lamport') ?? 0);
    this.referenced.clear();
  }

  /** Every block of one stream as [seq, hash], in seq order (hash order within a forked seq). */
  streamBlocks(author: string, stream: string, fromSeq = 0): [number, string][] {
    const seen = new Set<string>();
    const out: [number, string][] = [];
    for (const k of this.chain.getKeys({ start: [author, stream, fromSeq], end: [author, stream, Number.MAX_SAFE_INTEGER] })) {
      seen.add(k[3]);
      out.push([k[2], k[3]]);
    }
    const prefix = `${author}/${stream}/`;
    for (const [key, set] of this.pendingChain) {
      if (!key.startsWith(prefix)) continue;
      const seq = Number(key.slice(prefix.length));
      if (seq < fromSeq) continue;
      for (const h of set) if (!seen.has(h)) out.push([seq, h]);
    }
    return out.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  }

  /**
   * One stream's blocks as [seq, hash] in seq order, read lazily in chunks (for sync: memory
   * does not grow with the stream). Queued blocks are merged in.
   */
  *iterStream(author: string, stream: string, fromSeq = 0): Generator<[number, string]> {
    const prefix = `${author}/${stream}/`;
    const pending: [number, string][] = [];
    for (const [key, set] of this.pendingChain) {
      if (!key.startsWith(prefix)) continue;
      const seq = Number(key.slice(prefix.length));
      if (seq >= fromSeq) for (const h of set) pending.push([seq, h]);
    }
    pending.sort((a, b) => a[0] - b[0]);
    const queued = new Set(pending.map((p) => p[1]));
    let i = 0;
    let next = fromSeq;
    let last: [string, string, number, string] | undefined;
    for (;;) {
      const chunk = [...this.chain.getKeys({ start: last ?? [author, stream, next], end: [author, stream, Number.MAX_SAFE_INTEGER], limit: 256 })].filter((k) => last === undefined || k[2] !== last[2] || k[3] !== last[3]);
      if (chunk.length === 0) break;
      for (const k of chunk) {
        while (i < pending.length && pending[i]![0] < k[2]) yield pending[i++]!;
        if (!queued.has(k[3])) yield [k[2], k[3]];
      }
      last = chunk[chunk.length - 1]!;
      next = last[2];
    }
    while (i < pending.length) yield pending[i++]!;
  }

  /** A block as this gateway can read it: a sealed block opened when it holds the key, else as is. */
  readable(block: Block): Block {
    if (block.kind !== 'sealed' || !this.opts.crypto) return block;
    const r = this.opts.crypto.open(block);
    return r.ok ? r.value : block;
  }

  /** Opens a sealed block: `sealed/no-key` without its key, `sealed/auth-failed` when its ciphertext does not open. */
  openSealed(block: Block): Result<Block> {
    return this.opts.crypto ? this.opts.crypto.open(block) : fail('sealed/no-key', 'this log has no keys (no confidential policies)');
  }

  /** Hashes of the blocks of one kind (`sealed` for every confidential block, readable or not). */
  *hashesOfKind(kind: Block['kind']): Generator<string> {
    for (const { key, value } of this.index.getRange()) if (value.kind === kind) yield key;
  }

  /** The frames-view entry of one frame: which block (and index) holds the chosen copy. */
  viewEntry(device: string, boot: number, seq: number): ViewEntry | undefined {
    return this.frameView_.entry(device, boot, seq);
  }

  /** Own streams this gateway found forked while authoring. */
  ownForks(): string[] {
    return [...this.forkedOwn];
  }

  /**
   * The version-vector entry of one stream without walking it: lowest seq held, and the
   * block count (one per seq, plus the extra blocks at equivocated seqs).
   */
  streamRange(author: string, stream: string): { low: number; high: number; count: number } | undefined {
    const h = this.heads.get(headKey(author, stream));
    if (!h) return undefined;
    // With a mark, the range starts there (blocks kept below it, such as enrolments, are extra).
    const mark = this.mark(author, stream);
    let low = h.seq;
    if (mark > 0) low = Math.min(mark, h.seq);
    else {
      for (const k of this.chain.getKeys({ start: [author, stream, 0], end: [author, stream, Number.MAX_SAFE_INTEGER], limit: 1 })) low = Math.min(low, k[2]);
      const prefix = `${author}/${stream}/`;
      for (const key of this.pendingChain.keys()) if (key.startsWith(prefix)) low = Math.min(low, Number(key.slice(prefix.length)));
    }
    let extra = 0;
    for (const [seq, hashes] of this.forks(author, stream)) if (seq >= low) extra += hashes.length - 1;
    return { low, high: h.seq, count: h.seq - low + 1 + extra };
  }

  /** The seqs of a stream that hold more than one block, with their hashes, in seq order. */
  forks(author: string, stream: string): [number, string[]][] {
    const seqs = new Set<number>();
    for (const { key } of this.equivocDb.getRange({ start: [author, stream, 0], end: [author, stream, Number.MAX_SAFE_INTEGER] })) seqs.add(key[2]);
    const prefix = `${author}/${stream}/`;
    for (const [key, set] of this.pendingChain) if (key.startsWith(prefix) && set.size > 0) seqs.add(Number(key.slice(prefix.length)));
    const out: [number, string[]][] = [];
    for (const seq of [...seqs].sort((a, b) => a - b)) {
      const hashes = this.hashesAt(author, stream, seq);
      if (hashes.length > 1) out.push([seq, hashes]);
    }
    return out;
  }

  /** Every stream head, sorted by (author, stream). */
  streamHeads(): StreamHead[] {
    return [...this.heads.values()].sort((a, b) => (a.author < b.author ? -1 : a.author > b.author ? 1 : a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  }

  /**
   * SHA-256 over the sorted heads `[author, stream, seq, [hashes], [[forked seq, [hashes]]…]]`
   * in canonical CBOR: two logs print the same digest exactly when they hold the same
   * blocks. Each head names its chain through `prev`, and a block off that chain (an
   * equivocation) sits at a seq holding two or more blocks, which the fork list names.
   * With `only`, over the streams it allows (what sync may offer one peer under policies).
   */
  headsDigest(only?: (author: string, stream: string) => boolean): string {
    const heads = this.streamHeads()
      .filter((h) => only === undefined || only(h.author, h.stream))
      .map((h) => [h.author, h.stream, h.seq, h.hashes, this.forks(h.author, h.stream)]);
    return toHex(sha256(encodeCanonical(heads)));
  }

  /** Equivocations: (author, stream, seq) holding two or more blocks. */
  equivocations(): { author: string; stream: string; seq: number; hashes: string[] }[] {
    const out: { author: string; stream: string; seq: number; hashes: string[] }[] = [];
    for (const { key } of this.equivocDb.getRange()) out.push({ author: key[0], stream: key[1], seq: key[2], hashes: this.hashesAt(key[0], key[1], key[2]) });
    return out;
  }

  /** Authors flagged for equivocating. */
  flaggedAuthors(): string[] {
    return [...new Set(this.equivocations().map((e) => e.author))].sort();
  }

  /** The frames view: one entry per (device, boot, seq), whichever gateways heard it. */
  *frameView(device?: string): Generator<ViewEntry> {
    yield* this.frameView_.entries(device);
  }

  /** All block hashes held (sorted). */
  *allHashes(): Generator<string> {
    yield* this.blocks.getKeys();
  }

  /** Raw (possibly tampered) stored entries, for the audit walk. */
  *rawBlocks(): Generator<{ key: string; envelope: Uint8Array }> {
    for (const { key, value } of this.blocks.getRange()) yield { key, envelope: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
  }

  blockCount(): number {
    return this.blocks.getCount();
  }

  /** For tests and tools only: overwrite a stored block's bytes (to simulate tampering on disk). */
  async rawPut(hash: string, envelope: Uint8Array): Promise<void> {
    await this.blocks.put(hash, Buffer.from(envelope));
  }

  // -------------------------------------------------------------------------
  // Retention (low-water marks) and logged revocations

  /** What marks.ts reads and writes of the log (its databases and queued state). */
  private internals(): LogInternals {
    return {
      store: this.store,
      author: this.author,
      blocks: this.blocks,
      index: this.index,
      chain: this.chain,
      equivocDb: this.equivocDb,
      headsDb: this.headsDb,
      heads: this.heads,
      view: this.frameView_,
      maxPrunePerMark: this.opts.maxPrunePerMark ?? 512,
      hashesAt: (a, st, q) => this.hashesAt(a, st, q),
      lookup: (h) => this.lookup(h),
      getEnvelope: (h) => this.getEnvelope(h),
      readable: (b) => this.readable(b),
      iterStream: (a, st, from) => this.iterStream(a, st, from),
      streamBlocks: (a, st, from) => this.streamBlocks(a, st, from),
    };
  }

  /** The low-water mark of a stream (0: none; nothing below it is kept or accepted, bar registry blocks). */
  mark(author: string, stream: string): number {
    return this.marks.get(author, stream);
  }

  /** Hashes (sorted) of the blocks a mark keeps below it in a stream (registry blocks); none without a mark. */
  keptBelow(author: string, stream: string): string[] {
    return this.marks.keptBelow(author, stream);
  }

  /** Every mark held, with the signed retention block behind it. */
  markRecords(): Generator<MarkRecord> {
    return this.marks.records();
  }

  /** The signed retention block behind a stream's mark (queued ones included). */
  markEnvelope(author: string, stream: string): Uint8Array | undefined {
    return this.marks.envelope(author, stream);
  }

  private raiseMark(author: string, stream: string, low: number, envelope: Uint8Array): void {
    if (this.marks.raise(author, stream, low, envelope)) this.schedulePrune(author, stream);
  }

  /**
   * A retention block sent ahead of the blocks it lets start at a mark (sync `mark`): its
   * author signature is checked and its mark recorded; the block itself arrives in its chain.
   */
  acceptMark(envelope: Uint8Array): { status: 'raised' | 'held' } | { status: 'rejected'; faults: Fault[] } {
    const d = decodeSignedBlock(envelope);
    const at = toHex(sha256(envelope));
    if (!d.ok) return { status: 'rejected', faults: [{ code: 'malformed', block: at, detail: `${d.error.code}: ${d.error.message}` }] };
    const b = d.value.block;
    if (b.kind !== 'retention') return { status: 'rejected', faults: [{ code: 'malformed', block: at, detail: 'a mark is a retention block' }] };
    // Only who signed it matters here: its chain is checked when the block itself arrives.
    if (!this.ctx.isKnownAuthor(b.author)) return { status: 'rejected', faults: [{ code: 'unknown-author', block: at, detail: `author ${toHex(b.author)} is not a known gateway` }] };
    if (!verifyEd25519(b.author, blockSigningInput(d.value.hash), d.value.signature)) return { status: 'rejected', faults: [{ code: 'bad-signature', block: at, detail: 'author signature does not verify' }] };
    const author = toHex(b.author);
    if (b.body.low <= this.mark(author, b.stream)) return { status: 'held' };
    this.raiseMark(author, b.stream, b.body.low, envelope);
    return { status: 'raised' };
  }

  private schedulePrune(author: string, stream: string): void {
    this.later(() => this.pruneNow(author, stream));
  }

  /** Runs `task` in one turn once everything queued before it is durable (so reads see it). */
  private later(task: () => void): void {
    this.maintenance = this.maintenance
      .then(() => this.store.durable())
      .catch(() => {})
      .then(task)
      .catch(() => {});
  }

  private pruneNow(author: string, stream: string): number {
    return this.marks.prune(author, stream);
  }

  /**
   * Authors a retention block on this gateway's own `stream`: every replica prunes the
   * stream's prunable blocks below `low` (at most the next seq, which the block takes).
   */
  retain(stream: string, low: number, cutoff: number): SignedBlock {
    const head = this.heads.get(headKey(this.author, stream));
    const next = head === undefined ? 0 : head.seq + 1;
    if (!Number.isSafeInteger(low) || low < 0 || low > next) throw new RangeError(`retention low ${low} must be 0..${next}`);
    return this.author_({ kind: 'retention', body: { stream, low, cutoff } }, stream);
  }

  /**
   * Where a mark for this gateway's `stream` would go for receive times before `cutoff`,
   * and how many prunable blocks it would take (marks.ts).
   */
  planRetention(stream: string, cutoff: number): { low: number; prunable: number } {
    return this.marks.plan(stream, cutoff);
  }

  /**
   * Applies `retentionFor` to this gateway's own streams at `now`: one retention block per
   * stream with frames blocks older than its limit. Returns the blocks authored.
   */
  retainByAge(now = Date.now(), dryRun = false): { stream: string; low: number; prunable: number; block?: SignedBlock }[] {
    const out: { stream: string; low: number; prunable: number; block?: SignedBlock }[] = [];
    for (const h of this.streamHeads()) {
      if (h.author !== this.author) continue;
      const maxAge = this.opts.retentionFor?.(h.stream);
      if (maxAge === undefined) continue;
      const cutoff = now - maxAge;
      const plan = this.planRetention(h.stream, cutoff);
      if (plan.prunable === 0 || plan.low <= this.mark(this.author, h.stream)) continue;
      out.push({ stream: h.stream, ...plan, ...(!dryRun && { block: this.retain(h.stream, plan.low, cutoff) }) });
    }
    return out;
  }

  /** Rebuilds the copies index of a store written before it existed (once, at open). */
  private rebuildCopies(): void {
    const ticket = FramesView.ticket();
    const blocks: { hash: string; frames: readonly FrameEntry[] }[] = [];
    for (const { key, value } of this.index.getRange()) {
      if (value.kind !== 'frames' && value.kind !== 'sealed') continue;
      const d = decodeSignedBlock(this.getEnvelope(key) ?? new Uint8Array());
      const b = d.ok ? this.readable(d.value.block) : undefined;
      if (b?.kind === 'frames') blocks.push({ hash: key, frames: b.body });
    }
    this.frameView_.rebuildFrom(ticket, blocks);
  }

  /**
   * A logged revocation (or a re-enrolment after one) changed a device's state: the local
   * registry follows a revocation of the key it enrolled earlier, and the device's view
   * entries are re-chosen.
   */
  private revocationChanged(device: string, key: string): void {
    const at = this.revocations.revokedAt(device, key);
    const rec = this.store.devices.get(device);
    if (at !== undefined && rec && rec.publicKey === key && rec.revokedAt === undefined && rec.enrolledAt < at) {
      this.store.track(this.store.devices.put(device, { ...rec, revokedAt: at }));
    }
    this.later(() => {
      const ticket = FramesView.ticket();
      this.frameView_.recomputeDevice(ticket, device);
      void this.store.durable().then(
        () => this.frameView_.settle(ticket),
        () => this.frameView_.settle(ticket),
      );
    });
  }

  /**
   * From which receive time a device's frames are left out of the view: when every key
   * logged for it is revoked (and not enrolled again since), the latest revocation. A frame
   * a sibling received after that is kept in its block but not shown, on every replica alike.
   */
  revokedSince(device: string): number | undefined {
    return this.revocations.since(device, this.loggedKeys(device));
  }

  /**
   * Logs the local registry's revocations not logged yet (an enrolment block with
   * `revokedAt`, on the default stream), so siblings learn them. Returns the blocks authored.
   */
  logRevocations(): SignedBlock[] {
    const out: SignedBlock[] = [];
    for (const { value: rec } of this.store.devices.getRange()) {
      if (rec.revokedAt === undefined || (this.revocations.lastRevocation(rec.id, rec.publicKey) ?? -1) >= rec.revokedAt) continue;
      const body: EnrolmentBody = {
        device: rec.id,
        publicKey: fromHex(rec.publicKey)!,
        enrolledAt: rec.enrolledAt,
        revokedAt: rec.revokedAt,
        ...(rec.site !== undefined && { site: rec.site }),
        ...(rec.model !== undefined && { model: rec.model }),
        ...(rec.name !== undefined && { name: rec.name }),
      };
      out.push(this.author_({ kind: 'enrolment', body }, DEFAULT_POLICY));
    }
    return out;
  }

  /** Resolves once everything queued so far is on disk. */
  durable(): Promise<void> {
    return this.store.durable();
  }

  /** Resolves once queued writes, and the prunes and view updates they started, are on disk. */
  async settled(): Promise<void> {
    await this.store.durable().catch(() => {});
    await this.maintenance;
    await this.store.durable();
  }

  /** Parents may be in streams withheld from this gateway by policy (option `withheldParentsOk`). */
  get withheldParentsOk(): boolean {
    return this.opts.withheldParentsOk === true;
  }

  get clock(): number {
    return this.lamport;
  }
}
