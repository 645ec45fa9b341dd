/**
 * Authoring: the blocks this gateway signs on its own streams (frames, enrolments, key
 * wraps, retention marks, revocations, any other kind), each chained onto its stream's head,
 * naming other streams' heads as parents, and queued through `put` (apply.ts).
 */
import {
  type Block,
  type EnrolmentBody,
  type FrameEntry,
  fromHex,
  MAX_BLOCK_FRAMES,
  MAX_PARENTS,
  type SignedBlock,
  signBlock,
} from '../../protocols/index.js';
import type { DeviceRecord } from '../store/store.js';
import { put, type PutHooks } from './apply.js';
import { headKey, type LogState } from './state.js';
import { frameId } from './verify.js';

/** The one policy (and stream) frames are written under until policies exist. */
export const DEFAULT_POLICY = 'default';
/** A block's `policy` is `name@version` (or a bare name); its stream is the name, so a stream stays one policy across versions. */
export const policyStream = (policy: string): string => {
  const at = policy.lastIndexOf('@');
  return at > 0 ? policy.slice(0, at) : policy;
};

/** The enrolment block body for a device's registry record (with its revocation, if any). */
const enrolmentBody = (device: string, rec: DeviceRecord): EnrolmentBody => ({
  device,
  publicKey: fromHex(rec.publicKey)!,
  enrolledAt: rec.enrolledAt,
  ...(rec.revokedAt !== undefined && { revokedAt: rec.revokedAt }),
  ...(rec.site !== undefined && { site: rec.site }),
  ...(rec.model !== undefined && { model: rec.model }),
  ...(rec.name !== undefined && { name: rec.name }),
});

/**
 * Authors frames blocks for frames this gateway stored in one ingest batch
 * (one block per policy; more if the batch holds over MAX_BLOCK_FRAMES), and
 * queues them in the current transaction. Call in the same event-loop turn
 * as the frames' own writes.
 */
export function appendFrames(
  s: LogState,
  hooks: PutHooks,
  frames: readonly FrameEntry[],
  policy = DEFAULT_POLICY,
): SignedBlock[] {
  const out = beforeFrames(s, hooks, frames, policy);
  for (let i = 0; i < frames.length; i += MAX_BLOCK_FRAMES) {
    out.push(author(s, hooks, { kind: 'frames', body: frames.slice(i, i + MAX_BLOCK_FRAMES) }, policy));
  }
  return out;
}

/**
 * The blocks a frames block of `policy` needs before it in its stream: the enrolment of each
 * device not logged there yet, and key wraps (so every holder of the data holds its key
 * blocks before it). Authored and queued in the current transaction.
 */
export function beforeFrames(
  s: LogState,
  hooks: PutHooks,
  frames: readonly FrameEntry[],
  policy: string,
): SignedBlock[] {
  const out: SignedBlock[] = [];
  // A device's enrolment goes into the log before its first frames (same stream, so prev order).
  const devices = new Set<string>();
  for (const f of frames) {
    const id = frameId(f.frame);
    if (id) devices.add(id.device);
  }
  for (const d of devices) {
    const rec = s.deviceRecord(d);
    // Logged already (under policies: in this stream, since siblings may get only some
    // streams and each must carry the enrolments of its devices), unless the log says this
    // key is revoked and the registry enrolled it again since.
    const logged =
      s.opts.withheldParentsOk === true
        ? s.enrolledInOwn(d, rec?.publicKey ?? '', policyStream(policy))
        : rec !== undefined && s.hasLoggedKey(d, rec.publicKey);
    if (!rec || (logged && (rec.revokedAt !== undefined || s.revocations.revokedAt(d, rec.publicKey) === undefined)))
      continue;
    out.push(author(s, hooks, { kind: 'enrolment', body: enrolmentBody(d, rec) }, policy));
  }
  for (const c of s.opts.crypto?.beforeAppend(policy) ?? []) out.push(author(s, hooks, c, policy));
  return out;
}

/** Authors one block of any kind on this gateway's stream for `policy` (`name@version`: the stream is the name). */
export function author(
  s: LogState,
  hooks: PutHooks,
  content: Pick<Block, 'kind' | 'body'>,
  policy: string,
  /** A frames block sealed from the journal: the number its frames' view entries point at (journal.ts). */
  journaled?: number,
): SignedBlock {
  const stream = policyStream(policy);
  const head = s.heads.get(headKey(s.author, stream));
  const parents: Uint8Array[] = [];
  let lamport = Math.max(s.lamport, head?.lamport ?? 0);
  for (const h of s.heads.values()) {
    if (h.author === s.author && h.stream === stream) continue;
    for (const hash of h.hashes) {
      if (s.referenced.has(hash) || parents.length >= MAX_PARENTS) continue;
      parents.push(fromHex(hash)!);
      s.referenced.add(hash);
      lamport = Math.max(lamport, h.lamport);
    }
  }
  // Our own stream forked (this key authored twice at one seq: a restored gateway that could
  // not reach its siblings first). Both branches are kept and flagged; continue on the least
  // hash so every replica sees the same continuation, rather than refusing to ingest.
  if (head !== undefined && head.hashes.length !== 1) s.forkedOwn.add(stream);
  const block = {
    author: s.opts.publicKey,
    stream,
    seq: head === undefined ? 0 : head.seq + 1,
    lamport: lamport + 1,
    prev: head === undefined ? null : fromHex(head.hashes[0]!)!,
    parents,
    policy,
    ...content,
  } as Block;
  // A mark stays readable by every holder of the stream (they must all prune alike).
  const sb = signBlock(block.kind === 'retention' ? block : (s.opts.crypto?.seal(block) ?? block), s.opts.sign);
  put(s, hooks, sb, block, journaled);
  return sb;
}

/**
 * Authors a retention block on this gateway's own `stream`: every replica prunes the
 * stream's prunable blocks below `low` (at most the next seq, which the block takes).
 */
export function retain(s: LogState, hooks: PutHooks, stream: string, low: number, cutoff: number): SignedBlock {
  const head = s.heads.get(headKey(s.author, stream));
  const next = head === undefined ? 0 : head.seq + 1;
  if (!Number.isSafeInteger(low) || low < 0 || low > next)
    throw new RangeError(`retention low ${low} must be 0..${next}`);
  return author(s, hooks, { kind: 'retention', body: { stream, low, cutoff } }, stream);
}

/**
 * Logs the local registry's revocations not logged yet (an enrolment block with
 * `revokedAt`, on the default stream), so siblings learn them. Returns the blocks authored.
 */
export function logRevocations(s: LogState, hooks: PutHooks): SignedBlock[] {
  const out: SignedBlock[] = [];
  for (const { value: rec } of s.store.devices.getRange()) {
    if (rec.revokedAt === undefined || (s.revocations.lastRevocation(rec.id, rec.publicKey) ?? -1) >= rec.revokedAt)
      continue;
    out.push(author(s, hooks, { kind: 'enrolment', body: enrolmentBody(rec.id, rec) }, DEFAULT_POLICY));
  }
  return out;
}
