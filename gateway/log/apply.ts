/**
 * Queuing blocks into the log: `put` writes a verified block (authored here or received)
 * and everything derived from it in the current transaction, and `apply` verifies a
 * sibling's block first. Until the transaction lands, the block lives in the pending maps
 * of state.ts; once durable it is dropped from them (`settle`), and on a failed commit
 * (disk full) forgotten with the heads reloaded from disk (`rollback`). A retention block
 * sent ahead of its chain (sync `mark`) is checked by `acceptMark`.
 */
import { IF_EXISTS } from 'lmdb';
import {
  type Block,
  blockSigningInput,
  type FrameEntry,
  decodeSignedBlock,
  hashHex,
  type SignedBlock,
  sha256,
  toHex,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { PRUNABLE_KINDS } from './marks.js';
import { headKey, type IndexRecord, type LogState, type StreamHead } from './state.js';
import type { ParsedFrame, Prechecked } from './frame-checks.js';
import { type Fault, knownFrameId, verifyFrames, verifyHeader, type VerifyContext } from './verify.js';
import { FramesView, type ViewTicket } from './view.js';
import { frameRow } from './frame-row.js';
import type { FrameRow } from './frames-index.js';

export type ApplyResult =
  | { readonly status: 'applied'; readonly hash: string; readonly equivocation: boolean }
  | { readonly status: 'known'; readonly hash: string }
  /** Below the stream's low-water mark: not kept, and not a fault. */
  | { readonly status: 'pruned'; readonly hash: string }
  | { readonly status: 'rejected'; readonly hash?: string; readonly faults: readonly Fault[] };

/** What a queued block sets off beyond the tables (block-log.ts: marks and revocations). */
export interface PutHooks {
  raiseMark(author: string, stream: string, low: number, envelope: Uint8Array): void;
  revocationChanged(device: string, key: string): void;
}

/**
 * Verifies a block received from a sibling and, if sound, queues it. A block
 * already held is `known`; a block at an (author, stream, seq) that holds a
 * different block is applied and flagged as an equivocation. `mark` is a stream's
 * low-water mark (0: none). `pre`: the envelope already decoded, its frames parsed and
 * signatures checked (sync's intake, on the verify pool); the checks are the same.
 */
export function apply(
  s: LogState,
  hooks: PutHooks,
  ctx: VerifyContext,
  mark: (author: string, stream: string) => number,
  envelope: Uint8Array,
  pre?: Prechecked,
): ApplyResult {
  const d = pre ? { ok: true as const, value: pre.decoded } : decodeSignedBlock(envelope);
  if (!d.ok)
    return {
      status: 'rejected',
      faults: [{ code: 'malformed', block: toHex(sha256(envelope)), detail: `${d.error.code}: ${d.error.message}` }],
    };
  const sb = d.value;
  const hash = hashHex(sb.hash);
  if (s.lookup(hash) !== undefined) return { status: 'known', hash };
  if (sb.block.seq < mark(toHex(sb.block.author), sb.block.stream) && PRUNABLE_KINDS.has(sb.block.kind))
    return { status: 'pruned', hash };
  // Header first: no device signature work for a block its author did not sign.
  let faults = verifyHeader(sb, ctx, undefined, pre?.checks?.author);
  // A sealed block is checked inside where this gateway can open it; chain and signature only, elsewhere.
  const plain = s.readable(sb.block);
  // Parsed frames and pool results are of the block as sent, so not of a sealed block's inside.
  const same = plain === sb.block;
  if (faults.length === 0)
    faults = verifyFrames(
      { ...sb, block: plain },
      ctx,
      hash,
      same ? pre?.frames : undefined,
      same ? pre?.checks : undefined,
    );
  if (faults.length > 0) return { status: 'rejected', hash, faults };
  // Every frame verified, so each parsed one has its identity: the view need not decode them again.
  const parsed = same ? pre?.frames : undefined;
  // Chained onto a block whose transaction has not landed: written only if that block is on
  // disk when this one commits (lmdb checks inside the commit). Else a failed commit (disk
  // full) then a good one would leave this block above a hole no sync fills, its stream's head
  // already matching the siblings' (found by test/chaos). Skipped, it is forgotten and resent.
  const prev = sb.block.prev === null ? undefined : hashHex(sb.block.prev);
  if (prev !== undefined && s.pendingIndex.has(prev)) {
    let equivocation = false;
    const landed = s.blocks.ifVersion(
      prev,
      IF_EXISTS,
      () => void (equivocation = put(s, hooks, sb, plain, undefined, parsed)),
    );
    s.store.track(landed);
    void landed.then(
      (written) => written || s.reloadHeads(),
      () => undefined,
    );
    return { status: 'applied', hash, equivocation };
  }
  const equivocation = put(s, hooks, sb, plain, undefined, parsed);
  return { status: 'applied', hash, equivocation };
}

/**
 * A retention block sent ahead of the blocks it lets start at a mark (sync `mark`): its
 * author signature is checked and its mark recorded; the block itself arrives in its chain.
 */
export function acceptMark(
  hooks: PutHooks,
  ctx: VerifyContext,
  mark: (author: string, stream: string) => number,
  envelope: Uint8Array,
): { status: 'raised' | 'held' } | { status: 'rejected'; faults: Fault[] } {
  const d = decodeSignedBlock(envelope);
  const at = toHex(sha256(envelope));
  if (!d.ok)
    return {
      status: 'rejected',
      faults: [{ code: 'malformed', block: at, detail: `${d.error.code}: ${d.error.message}` }],
    };
  const b = d.value.block;
  if (b.kind !== 'retention')
    return { status: 'rejected', faults: [{ code: 'malformed', block: at, detail: 'a mark is a retention block' }] };
  // Only who signed it matters here: its chain is checked when the block itself arrives.
  if (!ctx.isKnownAuthor(b.author))
    return {
      status: 'rejected',
      faults: [{ code: 'unknown-author', block: at, detail: `author ${toHex(b.author)} is not a known gateway` }],
    };
  if (!verifyEd25519(b.author, blockSigningInput(d.value.hash), d.value.signature))
    return {
      status: 'rejected',
      faults: [{ code: 'bad-signature', block: at, detail: 'author signature does not verify' }],
    };
  const author = toHex(b.author);
  if (b.body.low <= mark(author, b.stream)) return { status: 'held' };
  hooks.raiseMark(author, b.stream, b.body.low, envelope);
  return { status: 'raised' };
}

/** Queues a verified block and everything derived from it; returns whether it equivocates. */
export function put(
  s: LogState,
  hooks: PutHooks,
  sb: SignedBlock,
  plain: Block = s.readable(sb.block),
  /** A frames block sealed from the journal: its number, which its frames' view entries already hold. */
  journaled?: number,
  /** The frames as parsed and verified before (sync's intake): their identities and bodies. */
  parsed?: readonly ParsedFrame[],
): boolean {
  const b = plain; // the opened block, for a sealed one this gateway can read
  s.opts.crypto?.observe(b);
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
    no: journaled === undefined ? s.assignBlockNo(hash) : s.numberBlock(journaled, hash),
  };
  const track = (p: Promise<unknown>): void => s.store.track(p);
  const others = s.hashesAt(author, b.stream, b.seq);
  const equivocation = others.length > 0;
  track(s.blocks.put(hash, Buffer.from(sb.envelope.buffer, sb.envelope.byteOffset, sb.envelope.byteLength)));
  track(s.index.put(hash, rec));
  if (rec.kind !== 'frames') track(s.kinds.put([rec.kind, hash], 1));
  track(s.chain.put([author, b.stream, b.seq, hash], 1));
  if (equivocation) track(s.equivocDb.put([author, b.stream, b.seq], Date.now()));
  const chainKey = `${author}/${b.stream}/${b.seq}`;
  let set = s.pendingChain.get(chainKey);
  if (!set) s.pendingChain.set(chainKey, (set = new Set()));
  set.add(hash);
  s.pendingIndex.set(hash, rec);
  // Head: the highest seq of the stream (every hash held there, if it forked).
  const hk = headKey(author, b.stream);
  const head = s.heads.get(hk);
  let next: StreamHead | undefined;
  if (head === undefined || b.seq > head.seq)
    next = { author, stream: b.stream, seq: b.seq, hashes: [hash], lamport: b.lamport };
  else if (b.seq === head.seq)
    next = { ...head, hashes: [...head.hashes, hash].sort(), lamport: Math.max(head.lamport, b.lamport) };
  if (next) {
    s.heads.set(hk, next);
    track(s.headsDb.put([author, b.stream], { seq: next.seq, hashes: next.hashes, lamport: next.lamport }));
  }
  if (b.lamport > s.lamport) {
    s.lamport = b.lamport;
    track(s.meta.put('lamport', s.lamport));
  }
  if (b.kind === 'enrolment') {
    const key = toHex(b.body.publicKey);
    let set = s.pendingDevices.get(b.body.device);
    if (!set) s.pendingDevices.set(b.body.device, (set = new Set()));
    set.add(key);
    track(s.devicesDb.put([b.body.device, key], hash));
    const device = b.body.device;
    if (author === s.author) {
      const own = `${device}\u0000${key}\u0000${b.stream}`;
      s.pendingOwnEnrolments.add(own);
      track(s.devicesDb.put([device, key, b.stream], hash));
      const drop = (): void => void s.pendingOwnEnrolments.delete(own);
      void s.store.durable().then(drop, drop);
    }
    void s.store.durable().then(
      () => s.pendingDevices.get(device)?.delete(key),
      () => s.pendingDevices.get(device)?.delete(key),
    );
    if (s.revocations.note(device, key, b.body.enrolledAt, b.body.revokedAt)) hooks.revocationChanged(device, key);
  }
  if (b.kind === 'retention') hooks.raiseMark(author, b.stream, b.body.low, sb.envelope);
  // The least (hash, index) wins, so the view does not depend on arrival order.
  const ticket = FramesView.ticket();
  // A sealed journal block's frames are in the view already (pointing at its number): only a
  // frame held in other copies too is chosen again, now that its hash is known.
  if (b.kind === 'frames') {
    if (journaled === undefined) s.view.add(ticket, rec.no!, b.body, 0, parsed);
    else s.view.sealed(ticket, journaled, b.body);
  }
  // Once durable, reads see it: drop it from the pending maps.
  void s.store.durable().then(
    () => {
      settle(s, hash, rec, chainKey, ticket);
      // A conditional write (apply) may have been skipped: only blocks on disk are announced.
      const listened = s.blockListeners.size > 0 || (s.frameListeners.size > 0 && ticket.added.length > 0);
      // A commit that lands while the store closes (a stopping gateway) is announced to no one.
      if (!listened || s.store.closed || !s.blocks.doesExist(hash)) return;
      for (const l of s.blockListeners) l(sb);
      if (b.kind === 'frames' && ticket.added.length > 0 && s.frameListeners.size > 0) {
        // The bodies the intake decoded, for listeners that read them (decodedBody): recorded
        // only now, for frames that entered the view (a WeakMap entry per frame synced costs).
        if (parsed)
          for (const a of ticket.added) {
            const p = parsed[a.index];
            const e = b.body[a.index];
            if (p?.ok && p.id && e) knownFrameId(e.frame, p.id, p.body);
          }
        const rows = addedRows(b.body, author, b.stream, ticket.added);
        for (const l of s.frameListeners) l(rows);
      }
    },
    () => rollback(s, hash, rec, chainKey, ticket),
  );
  return equivocation;
}

/** The frames of one block that entered the view, as reader rows. */
function addedRows(
  body: readonly FrameEntry[],
  author: string,
  stream: string,
  added: ViewTicket['added'],
): FrameRow[] {
  const rows: FrameRow[] = [];
  for (const a of added) {
    const e = body[a.index];
    if (e) rows.push(frameRow(a, a.block, a.index, e, author, stream));
  }
  return rows;
}

function settle(s: LogState, hash: string, rec: IndexRecord, chainKey: string, ticket: ViewTicket): void {
  if (s.pendingIndex.get(hash) === rec) s.pendingIndex.delete(hash);
  s.pendingBlockNos.delete(rec.no!);
  const set = s.pendingChain.get(chainKey);
  set?.delete(hash);
  if (set?.size === 0) s.pendingChain.delete(chainKey);
  s.view.settle(ticket);
}

/** The transaction failed (disk full): forget what it held and reload the heads from disk. */
function rollback(s: LogState, hash: string, rec: IndexRecord, chainKey: string, ticket: ViewTicket): void {
  s.pendingIndex.delete(hash);
  s.pendingBlockNos.delete(rec.no!);
  s.pendingChain.get(chainKey)?.delete(hash);
  s.view.settle(ticket);
  s.reloadHeads();
}

/**
 * A logged revocation (or a re-enrolment after one) changed a device's state: the local
 * registry follows a revocation of the key it enrolled earlier, and the device's view entries
 * (with their time-index keys) are re-chosen in a `later` turn, once what was queued is durable.
 */
export function revocationChanged(s: LogState, device: string, key: string, later: (task: () => void) => void): void {
  const at = s.revocations.revokedAt(device, key);
  const rec = s.store.devices.get(device);
  if (at !== undefined && rec && rec.publicKey === key && rec.revokedAt === undefined && rec.enrolledAt < at) {
    s.store.track(s.store.devices.put(device, { ...rec, revokedAt: at }));
  }
  later(() => {
    const ticket = FramesView.ticket();
    s.view.recomputeDevice(ticket, device);
    const done = (): void => s.view.settle(ticket);
    void s.store.durable().then(done, done);
  });
}
