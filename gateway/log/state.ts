/**
 * The block log's lmdb tables and the state kept beside them (gateway/log/README.md, "Store"):
 * one object shared by the parts of the log (authoring.ts, apply.ts, queries.ts, marks.ts),
 * so the heads, the lamport clock and the pending maps exist once.
 *
 *   log-blocks   hash → signed envelope `[block bytes, signature]`
 *   log-index    hash → {author, stream, seq, lamport, kind, frames, no (the block's number)}
 *   log-kinds    [kind, hash] → 1   every block but frames blocks, so a start finds the few
 *                key-wrap, rule, firmware and actuation blocks without walking log-index
 *   log-chain    [author, stream, seq, hash] → 1   (two hashes at one seq = equivocation)
 *   log-heads    [author, stream] → {seq, hashes, lamport}
 *   log-equivoc  [author, stream, seq] → time first seen
 *   log-frame-view, log-frame-copies, log-frame-time, log-frame-device
 *                the frames view across authors and its time indexes, binary keys with short
 *                device and block numbers (frame-tables.ts, view.ts)
 *   log-block-nos   block number → hash; log-device-nos / log-device-ids  device id ↔ number (numbers.ts)
 *   log-meta     'lamport' → this gateway's lamport clock; 'schema' → the data format (upgrade.ts);
 *                'blockNo', 'deviceNo' → the next numbers
 *   log-devices  [device, key hex] → hash of the enrolment block (keys enrolled through the log)
 *   log-revoked, log-enrolled  revocation state per (device, key) (revocations.ts)
 *   log-low      [author, stream] → {low, envelope}  low-water marks and the retention block behind each (marks.ts)
 *   log-journal  the open blocks' frames, acked and not yet signed (journal-table.ts)
 *
 * Authors are hex public keys, hashes hex.
 *
 * Reads in lmdb-js see committed data only, so what was queued but is not yet durable is
 * kept in the `pending` maps until its transaction lands.
 */
import type { Database } from 'lmdb';
import { type Block, type SignedBlock, toHex } from '../../protocols/index.js';
import type { Logger } from '../logger.js';
import type { DeviceRecord, Store } from '../store/store.js';
import type { BlockRef } from './verify.js';
import type { FrameRow } from './frames-index.js';
import { Revocations } from './revocations.js';
import { FramesView } from './view.js';
import type { BlockCrypto } from './sealing.js';
import { JournalTable } from './journal-table.js';
import { BLOCK_NO_KEY, BlockNumbers, DeviceNumbering } from './numbers.js';

export interface IndexRecord extends BlockRef {
  readonly kind: Block['kind'];
  /** Frames in the block (0 for other kinds). */
  readonly frames: number;
  /** Latest receive time of its frames (frames blocks; absent in stores written before retention). */
  readonly time?: number;
  /** The block's number in this directory (numbers.ts; absent before format 4). */
  readonly no?: number;
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
  /** Where a failed prune or view update is reported (warn); it runs in the background. */
  readonly log?: Logger;
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
  /**
   * Ingest's frames wait in the journal (journal.ts) until their open block is this old, ms
   * (config `log.sealAfterMs`; default 1000; 0: sealed in the transaction that journals them).
   */
  readonly sealAfterMs?: number;
}

export const headKey = (author: string, stream: string): string => `${author}/${stream}`;

export class LogState {
  readonly author: string;
  readonly blocks: Database<Buffer, string>;
  readonly index: Database<IndexRecord, string>;
  /** [kind, hash] of every block that is not a frames block (format 3; upgrade.ts builds it). */
  readonly kinds: Database<1, [string, string]>;
  readonly chain: Database<number, [string, string, number, string]>;
  readonly headsDb: Database<HeadRecord, [string, string]>;
  readonly equivocDb: Database<number, [string, string, number]>;
  readonly meta: Database<number, string>;
  /** [device, key] → enrolment block; [device, key, stream] → this gateway's enrolment block in its own stream. */
  readonly devicesDb: Database<string, [string, string] | [string, string, string]>;
  readonly revocations: Revocations;
  readonly view: FramesView;
  /** Block number → hash (numbers.ts), and the numbers queued but not yet durable. */
  readonly blockNos: BlockNumbers;
  readonly pendingBlockNos = new Map<number, string>();
  nextBlockNo: number;
  /** Every stream head, authoritative (loaded once, then kept in step with writes). */
  readonly heads = new Map<string, StreamHead>();
  lamport: number;
  /** Own streams found forked (reported in `ownForks()`). */
  readonly forkedOwn = new Set<string>();
  readonly blockListeners = new Set<(sb: SignedBlock) => void>();
  /** Called with the frames that entered the view, once durable (in their block, or in the journal). */
  readonly frameListeners = new Set<(rows: FrameRow[]) => void>();
  /** Heads already named as parents by one of our blocks (so each is named once). */
  readonly referenced = new Set<string>();
  // Queued, not yet durable.
  readonly pendingIndex = new Map<string, IndexRecord>();
  readonly pendingChain = new Map<string, Set<string>>();
  readonly pendingDevices = new Map<string, Set<string>>();
  /** `device\0key\0stream` of own enrolment blocks not yet durable. */
  readonly pendingOwnEnrolments = new Set<string>();
  /** A key per device found committed in `log-devices` (hasLoggedKey). */
  private readonly loggedKeySeen = new Map<string, string>();
  readonly deviceRecord: (device: string) => DeviceRecord | undefined;

  constructor(
    readonly store: Store,
    readonly opts: BlockLogOptions,
  ) {
    const root = store.root;
    this.blocks = root.openDB({ name: 'log-blocks', encoding: 'binary' });
    this.index = root.openDB({ name: 'log-index' });
    this.kinds = root.openDB({ name: 'log-kinds' });
    this.chain = root.openDB({ name: 'log-chain' });
    this.headsDb = root.openDB({ name: 'log-heads' });
    this.equivocDb = root.openDB({ name: 'log-equivoc' });
    this.meta = root.openDB({ name: 'log-meta' });
    this.revocations = new Revocations(root, (p) => store.track(p));
    this.blockNos = new BlockNumbers(root);
    this.nextBlockNo = this.firstFreeBlockNo();
    this.view = new FramesView(
      root,
      (p) => store.track(p),
      (d) => this.revokedSince(d),
      new DeviceNumbering(
        root,
        this.meta,
        (p) => store.track(p),
        () => store.closed,
      ),
      this,
    );
    this.author = toHex(opts.publicKey);
    for (const { key, value } of this.headsDb.getRange())
      this.heads.set(headKey(key[0], key[1]), { author: key[0], stream: key[1], ...value });
    this.lamport = this.meta.get('lamport') ?? 0;
    this.devicesDb = root.openDB({ name: 'log-devices' });
    this.deviceRecord = opts.deviceRecord ?? ((device) => store.devices.get(device));
  }

  /** Whether this gateway logged an enrolment of (device, key) in its own `stream`. */
  enrolledInOwn(device: string, key: string, stream: string): boolean {
    return (
      this.pendingOwnEnrolments.has(`${device}\u0000${key}\u0000${stream}`) ||
      this.devicesDb.doesExist([device, key, stream])
    );
  }

  /**
   * Whether an enrolment block of (device, key) is in the log or queued. Sealing asks it of
   * every device in a block; a pair found committed is remembered (`log-devices` rows are never
   * removed), so that is one map lookup, not a range read, per device per block.
   */
  hasLoggedKey(device: string, key: string): boolean {
    if (this.loggedKeySeen.get(device) === key || this.pendingDevices.get(device)?.has(key)) return true;
    if (!this.devicesDb.doesExist([device, key])) return false;
    this.loggedKeySeen.set(device, key);
    return true;
  }

  /** Keys (hex) enrolled for a device by enrolment blocks in the log. */
  loggedKeys(device: string): string[] {
    const out = new Set(this.pendingDevices.get(device) ?? []);
    for (const k of this.devicesDb.getKeys({ start: [device], end: [device + '\u0000'] }))
      if (k[0] === device) out.add(k[1]);
    return [...out];
  }

  /** From which receive time a device's frames are left out of the view (revocations.ts). */
  revokedSince(device: string): number | undefined {
    // Most devices were never revoked: no read of their logged keys (a range read a frame in the view's add).
    if (!this.revocations.hasAny(device)) return undefined;
    return this.revocations.since(device, this.loggedKeys(device));
  }

  private firstFreeBlockNo(): number {
    return Math.max(
      this.meta.get(BLOCK_NO_KEY) ?? 1,
      this.blockNos.last() + 1,
      new JournalTable(this.store.root).last() + 1,
    );
  }

  /** A number for a journal's open block (journal.ts), hashed when the block is sealed. */
  allocBlockNo(): number {
    const no = this.nextBlockNo++;
    this.store.track(this.meta.put(BLOCK_NO_KEY, this.nextBlockNo));
    return no;
  }

  /** Records the hash of a block numbered when its journal block opened (queued in the current transaction). */
  numberBlock(no: number, hash: string): number {
    this.store.track(this.blockNos.put(no, hash));
    this.pendingBlockNos.set(no, hash);
    return no;
  }

  /** Numbers a block (queued in the current transaction); numbers are never reused. */
  assignBlockNo(hash: string): number {
    const no = this.nextBlockNo++;
    this.store.track(this.blockNos.put(no, hash));
    this.store.track(this.meta.put(BLOCK_NO_KEY, this.nextBlockNo));
    this.pendingBlockNos.set(no, hash);
    return no;
  }

  /** After clearing the numbers (upgrade.ts). */
  resetBlockNos(): void {
    this.pendingBlockNos.clear();
    this.nextBlockNo = this.firstFreeBlockNo();
  }

  /** The hash of a numbered block (queued or durable). */
  hashOf(no: number): string | undefined {
    const p = this.pendingBlockNos.get(no);
    if (p !== undefined) return p;
    return this.blockNos.get(no);
  }

  lookup(hash: string): IndexRecord | undefined {
    return this.pendingIndex.get(hash) ?? this.index.get(hash);
  }

  /** The signed envelope of a block, if held. */
  getEnvelope(hash: string): Uint8Array | undefined {
    const b = this.blocks.get(hash);
    return b === undefined ? undefined : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  /** The same without a copy, valid only until the next lmdb read (the frames reader's one-row reads). */
  peekEnvelope(hash: string): Uint8Array | undefined {
    return this.blocks.getBinaryFast(hash);
  }

  /** Brings these envelopes' pages into the page cache off the main thread (lmdb's prefetch). */
  prefetchEnvelopes(hashes: string[]): Promise<void> {
    return this.blocks.prefetch(hashes);
  }

  /** Hashes held at one (author, stream, seq): one normally, two or more after an equivocation. */
  hashesAt(author: string, stream: string, seq: number): string[] {
    const out = new Set(this.pendingChain.get(`${author}/${stream}/${seq}`) ?? []);
    for (const k of this.chain.getKeys({ start: [author, stream, seq], end: [author, stream, seq + 1] })) out.add(k[3]);
    return [...out].sort();
  }

  /** A block as this gateway can read it: a sealed block opened when it holds the key, else as is. */
  readable(block: Block): Block {
    if (block.kind !== 'sealed' || !this.opts.crypto) return block;
    const r = this.opts.crypto.open(block);
    return r.ok ? r.value : block;
  }

  /** Heads as on disk (after a failed or skipped write). */
  reloadHeads(): void {
    this.heads.clear();
    for (const { key, value } of this.headsDb.getRange())
      this.heads.set(headKey(key[0], key[1]), { author: key[0], stream: key[1], ...value });
    this.lamport = Math.max(this.lamport, this.meta.get('lamport') ?? 0);
    this.referenced.clear();
  }
}
