/**
 * The block log in lmdb, next to the frames in the same environment, so a
 * frames block and the frames it carries commit in one transaction.
 *
 *   log-blocks   hash → signed envelope `[block bytes, signature]`
 *   log-index    hash → {author, stream, seq, lamport, kind, frames}
 *   log-chain    [author, stream, seq, hash] → 1   (two hashes at one seq = equivocation)
 *   log-heads    [author, stream] → {seq, hashes, lamport}
 *   log-equivoc  [author, stream, seq] → time first seen
 *   log-view     [device, boot, seq] → [hash, index]  frames view across authors
 *   log-meta     'lamport' → this gateway's lamport clock
 *   log-devices  [device, key hex] → hash of the enrolment block (keys enrolled through the log)
 *
 * Authors are hex public keys, hashes hex. Reads in lmdb-js see committed data
 * only, so what was queued but is not yet durable is kept in small `pending`
 * maps until its transaction lands.
 */
import type { Database } from 'lmdb';
import {
  type Block,
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
} from '../../protocols/index.js';
import type { DeviceRecord, Store } from '../store/store.js';
import { type BlockRef, type Fault, frameId, verifyFrames, verifyHeader, type VerifyContext } from './verify.js';

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

export interface ViewEntry {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /** The block holding the chosen copy (the least (hash, index) among all copies, so every replica chooses the same). */
  readonly block: string;
  readonly index: number;
}

export type ApplyResult =
  | { readonly status: 'applied'; readonly hash: string; readonly equivocation: boolean }
  | { readonly status: 'known'; readonly hash: string }
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
}

const headKey = (author: string, stream: string): string => `${author}/${stream}`;

export class BlockLog {
  readonly author: string;
  private readonly blocks: Database<Buffer, string>;
  private readonly index: Database<IndexRecord, string>;
  private readonly chain: Database<number, [string, string, number, string]>;
  private readonly headsDb: Database<HeadRecord, [string, string]>;
  private readonly equivocDb: Database<number, [string, string, number]>;
  private readonly view: Database<[string, number], [string, number, number]>;
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
  private readonly pendingView = new Map<string, [string, number]>();
  private readonly deviceRecordFn: (device: string) => DeviceRecord | undefined;
  private readonly devicesDb: Database<string, [string, string]>;
  private readonly pendingDevices = new Map<string, Set<string>>();
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
    this.view = root.openDB({ name: 'log-view' });
    this.meta = root.openDB({ name: 'log-meta' });
    this.author = toHex(opts.publicKey);
    this.known.add(this.author);
    for (const k of opts.knownAuthors ?? []) this.known.add(toHex(k));
    for (const { key, value } of this.headsDb.getRange()) this.heads.set(headKey(key[0], key[1]), { author: key[0], stream: key[1], ...value });
    this.lamport = this.meta.get('lamport') ?? 0;
    this.devicesDb = root.openDB({ name: 'log-devices' });
    this.deviceRecordFn = opts.deviceRecord ?? ((device) => store.devices.get(device));
    this.ctx = {
      isKnownAuthor: (a) => this.known.has(toHex(a)),
      // The local registry decides for devices it knows: a sibling's enrolment cannot put
      // another key on a device enrolled here. Only devices unknown here take logged keys.
      deviceKeys: (d) => {
        const own = this.registryKeys(d);
        return own.length > 0 ? own : this.loggedKeys(d).map((k) => fromHex(k)!);
      },
      lookup: (h) => this.lookup(h),
    };
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
      if (!rec || this.loggedKeys(d).includes(rec.publicKey)) continue;
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
    const sb = signBlock(block, this.opts.sign);
    this.put(sb);
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
    // Header first: no device signature work for a block its author did not sign.
    let faults = verifyHeader(sb, this.ctx);
    if (faults.length === 0) faults = verifyFrames(sb, this.ctx);
    if (faults.length > 0) return { status: 'rejected', hash, faults };
    const equivocation = this.put(sb);
    return { status: 'applied', hash, equivocation };
  }

  /** Queues a verified block and everything derived from it; returns whether it equivocates. */
  private put(sb: SignedBlock): boolean {
    const b = sb.block;
    const hash = hashHex(sb.hash);
    const author = toHex(b.author);
    const rec: IndexRecord = { author, stream: b.stream, seq: b.seq, lamport: b.lamport, kind: b.kind, frames: b.kind === 'frames' ? b.body.length : 0 };
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
      void this.store.durable().then(
        () => this.pendingDevices.get(device)?.delete(key),
        () => this.pendingDevices.get(device)?.delete(key),
      );
    }
    const viewKeys: string[] = [];
    if (b.kind === 'frames') {
      b.body.forEach((f, i) => {
        const id = frameId(f.frame);
        if (!id) return;
        const k = `${id.device}\u0000${id.boot}\u0000${id.seq}`;
        const cur = this.pendingView.get(k) ?? this.view.get([id.device, id.boot, id.seq]);
        // The least (hash, index) wins, so the view does not depend on arrival order.
        if (cur !== undefined && (cur[0] < hash || (cur[0] === hash && cur[1] <= i))) return;
        this.pendingView.set(k, [hash, i]);
        viewKeys.push(k);
        track(this.view.put([id.device, id.boot, id.seq], [hash, i]));
      });
    }
    // Once durable, reads see it: drop it from the pending maps.
    void this.store.durable().then(
      () => {
        this.settle(hash, rec, chainKey, viewKeys);
        for (const l of this.blockListeners) l(sb);
      },
      () => this.rollback(hash, chainKey, viewKeys),
    );
    return equivocation;
  }

  private settle(hash: string, rec: IndexRecord, chainKey: string, viewKeys: string[]): void {
    if (this.pendingIndex.get(hash) === rec) this.pendingIndex.delete(hash);
    const set = this.pendingChain.get(chainKey);
    set?.delete(hash);
    if (set?.size === 0) this.pendingChain.delete(chainKey);
    for (const k of viewKeys) if (this.pendingView.get(k)?.[0] === hash) this.pendingView.delete(k);
  }

  /** The transaction failed (disk full): forget what it held and reload the heads from disk. */
  private rollback(hash: string, chainKey: string, viewKeys: string[]): void {
    this.pendingIndex.delete(hash);
    this.pendingChain.get(chainKey)?.delete(hash);
    for (const k of viewKeys) if (this.pendingView.get(k)?.[0] === hash) this.pendingView.delete(k);
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
    let low = h.seq;
    for (const k of this.chain.getKeys({ start: [author, stream, 0], end: [author, stream, Number.MAX_SAFE_INTEGER], limit: 1 })) low = Math.min(low, k[2]);
    const prefix = `${author}/${stream}/`;
    for (const key of this.pendingChain.keys()) if (key.startsWith(prefix)) low = Math.min(low, Number(key.slice(prefix.length)));
    let extra = 0;
    for (const [, hashes] of this.forks(author, stream)) extra += hashes.length - 1;
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
   */
  headsDigest(): string {
    const heads = this.streamHeads().map((h) => [h.author, h.stream, h.seq, h.hashes, this.forks(h.author, h.stream)]);
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
    const range = device === undefined ? this.view.getRange() : this.view.getRange({ start: [device], end: [device + '\u0000'] });
    for (const { key, value } of range) yield { device: key[0], boot: key[1], seq: key[2], block: value[0], index: value[1] };
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

  /** Resolves once everything queued so far is on disk. */
  durable(): Promise<void> {
    return this.store.durable();
  }

  get clock(): number {
    return this.lamport;
  }
}
