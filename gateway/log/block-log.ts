/**
 * The block log in lmdb, next to the frames in the same environment, so a
 * frames block and the frames it carries commit in one transaction (the tables: state.ts).
 *
 * Retention: a stream's author logs a retention block (kind 6) naming a low-water mark in
 * the same stream; every replica that holds it or receives it (sync `mark`) prunes the
 * stream's frames and retention blocks below the mark (enrolment and other registry blocks
 * are kept), with their index, chain, copies, view entries and the frames this gateway
 * stored for them, in one transaction once what came before is durable. A block below a
 * mark is answered `pruned`; the first kept block's missing `prev` is accepted.
 *
 * Authors are hex public keys, hashes hex. BlockLog is the facade: the tables and shared
 * state are in state.ts, authoring in authoring.ts, queuing and verifying received blocks
 * in apply.ts, stream reads in queries.ts, marks and pruning in marks.ts.
 */
import {
  type Block,
  decodeSignedBlock,
  fail,
  type FrameEntry,
  fromHex,
  type Result,
  type SignedBlock,
  toHex,
} from '../../protocols/index.js';
import type { Store } from '../store/store.js';
import type { Fault, VerifyContext } from './verify.js';
import type { Prechecked } from './frame-checks.js';
import { type MarkRecord, Marks } from './marks.js';
import { RememberedAuthors } from './authors.js';
import type { ViewEntry } from './view.js';
import { type BlockLogOptions, type IndexRecord, LogState, type StreamHead } from './state.js';
import { acceptMark, apply, type ApplyResult, type PutHooks, revocationChanged } from './apply.js';
import { appendFrames, author, DEFAULT_POLICY, logRevocations, retain } from './authoring.js';
import * as q from './queries.js';
import { type RetentionPlan, retainOwnStreams } from './retention.js';
import { FrameReader, type FrameRow } from './frames-index.js';
import { DEFAULT_SEAL_AFTER_MS, Journal } from './journal.js';
import {
  KINDS_SINCE,
  markFresh,
  refuseNewer,
  SCHEMA_VERSION,
  schemaOf,
  type UpgradeReport,
  upgrade,
} from './upgrade.js';
import type { Logger } from '../logger.js';

export { type MarkRecord, PRUNABLE_KINDS } from './marks.js';
export type { ViewEntry } from './view.js';
export type { BlockLogOptions, IndexRecord, StreamHead } from './state.js';
export type { ApplyResult } from './apply.js';
export { DEFAULT_POLICY, policyStream } from './authoring.js';
export type { FrameRow } from './frames-index.js';

export class BlockLog {
  readonly author: string;
  /** Tables, heads, lamport clock and pending maps, shared with the modules above. */
  private readonly s: LogState;
  private readonly hooks: PutHooks;
  private readonly known = new Set<string>();
  /** Registry public keys (hex) decoded to bytes, shared read-only (bounded: cleared at 4 096). */
  private readonly keyBytes = new Map<string, Uint8Array>();
  /** Sibling keys accepted through sync (authors.ts), for the audit. */
  readonly remembered: RememberedAuthors;
  /** Low-water marks and pruning (marks.ts). */
  private readonly marks: Marks;
  /** Prunes and view recomputes, run one at a time once what was queued before them is durable. */
  private maintenance: Promise<void> = Promise.resolve();
  readonly ctx: VerifyContext;
  /** The one read model of frames (frames-index.ts): every frame held, once, whichever gateway heard it. */
  readonly frames: FrameReader;
  /** Frames acked before their block is signed (journal.ts). */
  private readonly journal: Journal;
  /** The data format found at open (undefined: a fresh directory; upgrade.ts). */
  private schema: number | undefined;

  constructor(
    private readonly store: Store,
    private readonly opts: BlockLogOptions,
  ) {
    this.s = new LogState(store, opts);
    this.hooks = {
      raiseMark: (a, st, low, envelope) => this.raiseMark(a, st, low, envelope),
      revocationChanged: (d, k) => revocationChanged(this.s, d, k, (task) => this.later(task)),
    };
    this.author = this.s.author;
    this.journal = new Journal(this.s, this.hooks, opts.sealAfterMs ?? DEFAULT_SEAL_AFTER_MS);
    this.known.add(this.author);
    for (const k of opts.knownAuthors ?? []) this.known.add(toHex(k));
    this.marks = new Marks(store.root, this.s);
    this.remembered = new RememberedAuthors(store.root, (p) => store.track(p));
    this.schema = schemaOf(store.root);
    refuseNewer(this.schema, store.dir);
    if (this.schema === undefined) markFresh(this.s);
    this.frames = new FrameReader({
      root: store.root,
      envelope: (h) => this.s.getEnvelope(h),
      peek: (h) => this.s.peekEnvelope(h),
      prefetch: (hs) => this.s.prefetchEnvelopes(hs),
      readable: (b) => this.s.readable(b),
    });
    // A prune cut short (crash, disk full) is finished now (after the upgrade, if one is due).
    if (!this.needsUpgrade) this.resumePrunes();
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
    if (opts.crypto)
      for (const h of this.hashesOfKind('keys')) {
        const d = decodeSignedBlock(this.getEnvelope(h) ?? new Uint8Array());
        if (d.ok) opts.crypto.observe(d.value.block);
      }
  }

  /** Whether the data directory is in an earlier format that `upgrade()` must bring up to date first. */
  get needsUpgrade(): boolean {
    return this.schema !== undefined && this.schema < SCHEMA_VERSION;
  }

  /**
   * Brings a data directory of an earlier release up to date (upgrade.ts): crash-safe, run
   * again from the start if cut short. Call before anything writes (Gateway.start does).
   */
  async upgrade(log?: Logger): Promise<UpgradeReport | undefined> {
    if (!this.needsUpgrade) return undefined;
    const report = await upgrade(this.schema!, this.s, (frames) => this.appendFrames(frames), log);
    this.schema = SCHEMA_VERSION;
    this.resumePrunes();
    return report;
  }

  private resumePrunes(): void {
    for (const [author, stream] of this.marks.streams()) this.schedulePrune(author, stream);
  }

  /** Whether any copy of a frame is held or queued (ingest's duplicate check: own and synced frames alike). */
  holds(device: string, boot: number, seq: number): boolean {
    return this.s.view.holds(device, boot, seq);
  }

  /** Whether any frame may have another copy (committed; false: `copied` is false for every frame). One call. */
  anyCopied(): boolean {
    return this.s.view.anyCopied();
  }

  /** `copied` for a run of seqs of one (device, boot) at once: the seqs in lo..hi that may have another copy. */
  copiedSeqs(device: string, boot: number, lo: number, hi: number): Set<number> {
    return this.s.view.copiedSeqs(device, boot, lo, hi);
  }

  /** Every copy of a frame held (committed), as block hash and index (the export source). */
  copiesOf(device: string, boot: number, seq: number): { block: string; index: number }[] {
    return this.s.view.copiesOf(device, boot, seq);
  }

  /** Calls `fn` with the frames that entered the view (own and synced), once durable; returns an unsubscribe. */
  onFrames(fn: (rows: FrameRow[]) => void): () => void {
    this.s.frameListeners.add(fn);
    return () => this.s.frameListeners.delete(fn);
  }

  /** Trusts another gateway's key (from the sibling list). */
  addKnownAuthor(publicKey: Uint8Array): void {
    this.known.add(toHex(publicKey));
  }

  /** The local registry's key for a device, if enrolled here. */
  registryKeys(device: string): Uint8Array[] {
    const rec = this.s.deviceRecord(device);
    if (!rec) return [];
    // Read for every device of every block verified: each key's bytes are decoded once.
    let k = this.keyBytes.get(rec.publicKey);
    if (k === undefined) {
      k = fromHex(rec.publicKey);
      if (!k) return [];
      if (this.keyBytes.size >= 4096) this.keyBytes.clear();
      this.keyBytes.set(rec.publicKey, k);
    }
    return [k];
  }

  /** Keys (hex) enrolled for a device by enrolment blocks in the log. */
  loggedKeys(device: string): string[] {
    return this.s.loggedKeys(device);
  }

  /** Devices enrolled through the log (by this gateway or a sibling), sorted. */
  *loggedDevices(): Generator<string> {
    let last: string | undefined;
    for (const k of this.s.devicesDb.getKeys()) if (k[0] !== last) yield (last = k[0]);
  }

  lookup(hash: string): IndexRecord | undefined {
    return this.s.lookup(hash);
  }

  /** Whether a block is queued and not yet durable (lmdb may already show it: committed, not flushed). */
  queued(hash: string): boolean {
    return this.s.pendingIndex.has(hash);
  }

  /** The signed envelope of a block, if held. */
  getEnvelope(hash: string): Uint8Array | undefined {
    return this.s.getEnvelope(hash);
  }

  /** Hashes held at one (author, stream, seq): one normally, two or more after an equivocation. */
  hashesAt(author: string, stream: string, seq: number): string[] {
    return this.s.hashesAt(author, stream, seq);
  }

  /**
   * Authors frames blocks for frames this gateway stored in one ingest batch (one block per
   * policy; more if the batch holds over MAX_BLOCK_FRAMES), and queues them in the current
   * transaction. Call in the same event-loop turn as the frames' own writes (authoring.ts).
   */
  appendFrames(frames: readonly FrameEntry[], policy = DEFAULT_POLICY): SignedBlock[] {
    return appendFrames(this.s, this.hooks, frames, policy);
  }

  /**
   * Journals frames this gateway stored in one ingest group (one policy) with their view
   * entries, in the current transaction: they are acked once it is durable, and authored into
   * a frames block when their open block is sealed (journal.ts). Call where blocks are
   * authored (the ingest commit loop), in the same turn as the frames' own writes.
   */
  journalFrames(frames: readonly FrameEntry[], policy = DEFAULT_POLICY): void {
    // A confidential policy's frames never sit in the clear on disk: sealed blocks at once.
    if (this.opts.crypto?.confidential(policy)) this.appendFrames(frames, policy);
    else this.journal.append(frames, policy);
  }

  /**
   * Where sealing runs: the ingest commit loop (IngestPipeline.appendInCommit), so a sealed
   * block never chains onto one whose commit is in doubt. Default: at once.
   */
  set inCommit(run: (task: () => void) => void) {
    this.journal.inCommit = run;
  }

  /** Seals every open journal block (through `inCommit`); resolves once durable. Before sync exchanges, on close. */
  sealOpen(): Promise<void> {
    return this.journal.sealOpen();
  }

  /** Seals what a crash left in the journal, at start (before ingest); returns the frames sealed. */
  async sealJournal(): Promise<number> {
    const n = this.journal.size;
    if (n === 0) return 0;
    this.journal.sealAll();
    await this.store.durable();
    return n;
  }

  /** Frames acked and waiting in the journal for their block. */
  get journaled(): number {
    return this.journal.size;
  }

  /** Open journal blocks holding frames, by stream (each becomes a block of this gateway's chain when sealed). */
  journalBlocks(): Map<string, number> {
    return this.journal.openBlocks();
  }

  /** Stops the seal timer (before the store closes; what is left is sealed at the next start). */
  stopJournal(): void {
    this.journal.stop();
  }

  /**
   * Authors one block of any kind (policy grants, …) on this gateway's stream for `policy`
   * and queues it in the current transaction.
   */
  appendBlock(content: Pick<Block, 'kind' | 'body'>, policy: string): SignedBlock {
    return author(this.s, this.hooks, content, policy);
  }

  /** Calls `fn` with every block (authored or applied) once it is durable; returns an unsubscribe. */
  onDurableBlock(fn: (sb: SignedBlock) => void): () => void {
    this.s.blockListeners.add(fn);
    return () => this.s.blockListeners.delete(fn);
  }

  /**
   * Verifies a block received from a sibling and, if sound, queues it (apply.ts). A block
   * already held is `known`; a block at an (author, stream, seq) that holds a different
   * block is applied and flagged as an equivocation. `pre`: decoded and partly checked ahead
   * (frame-checks.ts; sync's intake verifies signatures on the worker pool).
   */
  apply(envelope: Uint8Array, pre?: Prechecked): ApplyResult {
    return apply(this.s, this.hooks, this.ctx, (a, st) => this.mark(a, st), envelope, pre);
  }

  /** Every block of one stream as [seq, hash], in seq order (hash order within a forked seq). */
  streamBlocks(author: string, stream: string, fromSeq = 0): [number, string][] {
    return q.streamBlocks(this.s, author, stream, fromSeq);
  }

  /** One stream's blocks as [seq, hash] in seq order, read lazily in chunks (queries.ts). */
  iterStream(author: string, stream: string, fromSeq = 0): Generator<[number, string]> {
    return q.iterStream(this.s, author, stream, fromSeq);
  }

  /** A block as this gateway can read it: a sealed block opened when it holds the key, else as is. */
  readable(block: Block): Block {
    return this.s.readable(block);
  }

  /** Opens a sealed block: `sealed/no-key` without its key, `sealed/auth-failed` when its ciphertext does not open. */
  openSealed(block: Block): Result<Block> {
    return this.opts.crypto
      ? this.opts.crypto.open(block)
      : fail('sealed/no-key', 'this log has no keys (no confidential policies)');
  }

  /**
   * Hashes of the durable blocks of one kind (`sealed` for every confidential block, readable
   * or not), not frames blocks: from `log-kinds`, or by walking `log-index` in a directory of
   * an earlier format not upgraded yet (the key wraps are read before the upgrade runs).
   */
  *hashesOfKind(kind: Exclude<Block['kind'], 'frames'>): Generator<string> {
    if (this.schema !== undefined && this.schema < KINDS_SINCE) {
      for (const { key, value } of this.s.index.getRange()) if (value.kind === kind) yield key;
      return;
    }
    for (const k of this.s.kinds.getKeys({ start: [kind], end: [`${kind}\u0000`] })) if (k[0] === kind) yield k[1];
  }

  /** The frames-view entry of one frame: which block (and index) holds the chosen copy. */
  viewEntry(device: string, boot: number, seq: number): ViewEntry | undefined {
    return this.s.view.entry(device, boot, seq);
  }

  /**
   * The stream (policy name) of the block holding a frame's chosen copy, or of the open journal
   * block it waits in (from memory: the broker asks for every frame it delivers).
   */
  framePolicy(device: string, boot: number, seq: number): string | undefined {
    const no = this.s.view.chosenNo(device, boot, seq);
    if (no === undefined) return undefined;
    const hash = this.s.hashOf(no);
    return hash === undefined ? this.journal.streamOf(no) : this.lookup(hash)?.stream;
  }

  /** Own streams this gateway found forked while authoring. */
  ownForks(): string[] {
    return [...this.s.forkedOwn];
  }

  /** The version-vector entry of one stream without walking it: lowest seq held, and the block count. */
  streamRange(author: string, stream: string): { low: number; high: number; count: number } | undefined {
    return q.streamRange(this.s, author, stream, this.mark(author, stream));
  }

  /** The seqs of a stream that hold more than one block, with their hashes, in seq order. */
  forks(author: string, stream: string): [number, string[]][] {
    return q.forks(this.s, author, stream);
  }

  /** Every stream head, sorted by (author, stream). */
  streamHeads(): StreamHead[] {
    return q.streamHeads(this.s);
  }

  /** SHA-256 over the sorted heads and their forks (queries.ts); with `only`, over the streams it allows. */
  headsDigest(only?: (author: string, stream: string) => boolean): string {
    return q.headsDigest(this.s, only);
  }

  /** Equivocations: (author, stream, seq) holding two or more blocks. */
  equivocations(): { author: string; stream: string; seq: number; hashes: string[] }[] {
    return q.equivocations(this.s);
  }

  /** Authors flagged for equivocating. */
  flaggedAuthors(): string[] {
    return [...new Set(this.equivocations().map((e) => e.author))].sort();
  }

  /** The frames view: one entry per (device, boot, seq), whichever gateways heard it. */
  *frameView(device?: string): Generator<ViewEntry> {
    yield* this.s.view.entries(device);
  }

  /** All block hashes held (sorted). */
  *allHashes(): Generator<string> {
    yield* this.s.blocks.getKeys();
  }

  /** Raw (possibly tampered) stored entries, for the audit walk. */
  *rawBlocks(): Generator<{ key: string; envelope: Uint8Array }> {
    for (const { key, value } of this.s.blocks.getRange())
      yield { key, envelope: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
  }

  blockCount(): number {
    return this.s.blocks.getCount();
  }

  /** For tests and tools only: overwrite a stored block's bytes (to simulate tampering on disk). */
  async rawPut(hash: string, envelope: Uint8Array): Promise<void> {
    await this.s.blocks.put(hash, Buffer.from(envelope));
  }

  // -------------------------------------------------------------------------
  // Retention (low-water marks) and logged revocations

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
    return acceptMark(this.hooks, this.ctx, (a, st) => this.mark(a, st), envelope);
  }

  private schedulePrune(author: string, stream: string): void {
    this.later(() => this.marks.prune(author, stream));
  }

  /** Runs `task` in one turn once everything queued before it is durable (so reads see it). */
  private later(task: () => void): void {
    this.maintenance = this.maintenance
      .then(() => this.store.durable())
      // A failed write is reported to its writer (append/apply, durable()); the task still runs on what landed.
      .catch(() => {})
      .then(task)
      .catch((err: unknown) =>
        this.opts.log?.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'block log prune or view update failed',
        ),
      );
  }

  /**
   * Authors a retention block on this gateway's own `stream`: every replica prunes the
   * stream's prunable blocks below `low` (at most the next seq, which the block takes).
   */
  retain(stream: string, low: number, cutoff: number): SignedBlock {
    return retain(this.s, this.hooks, stream, low, cutoff);
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
  retainByAge(now = Date.now(), dryRun = false): RetentionPlan[] {
    return retainOwnStreams(this, (st) => this.opts.retentionFor?.(st), now, dryRun);
  }

  /**
   * From which receive time a device's frames are left out of the view: when every key
   * logged for it is revoked (and not enrolled again since), the latest revocation. A frame
   * a sibling received after that is kept in its block but not shown, on every replica alike.
   */
  revokedSince(device: string): number | undefined {
    return this.s.revokedSince(device);
  }

  /**
   * Logs the local registry's revocations not logged yet (an enrolment block with
   * `revokedAt`, on the default stream), so siblings learn them. Returns the blocks authored.
   */
  logRevocations(): SignedBlock[] {
    return logRevocations(this.s, this.hooks);
  }

  /** Resolves once everything queued so far is on disk. */
  durable(): Promise<void> {
    return this.store.durable();
  }

  /** Resolves once queued writes, and the prunes and view updates they started, are on disk. */
  async settled(): Promise<void> {
    // Only orders the wait: a failed write rejects the durable() below.
    await this.store.durable().catch(() => {});
    await this.maintenance;
    await this.store.durable();
  }

  /** Parents may be in streams withheld from this gateway by policy (option `withheldParentsOk`). */
  get withheldParentsOk(): boolean {
    return this.opts.withheldParentsOk === true;
  }

  get clock(): number {
    return this.s.lamport;
  }
}
