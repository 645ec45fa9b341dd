/**
 * Ingest's decisions on verified frames, in submission order: the signature's verdict, the
 * body, the device's replay memory (stored, duplicate or too old), and the policy block each
 * stored frame joins. It remembers what is written but not yet durable, so a resend of such a
 * frame is a duplicate only if that write lands.
 */
import { decodeBody, decodeBodyResolved, type FrameEntry, type UplinkBody } from '../../protocols/index.js';
import type { BlockLog } from '../log/block-log.js';
import { knownFrameId } from '../log/verify.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { Admission } from './admission.js';
import { failed, rejected } from './outcome.js';
import type { IngestOptions } from './pipeline.js';
import { DEFAULT_REPLAY_LIMITS, type ReplayLimits, ReplayWindow } from './replay-window.js';

/** A frame's entry as the decisions read and fill it in. */
export interface Decided extends Admission {
  readonly rxTime: number;
  /** For a duplicate of a frame that was not yet durable: the commit-failure count when decided. */
  dupOfUncommitted?: number;
  /** Set for frames appended to the store in this batch. */
  stored?: { body: UplinkBody; key: string } | undefined;
}

export class FrameDecisions {
  /** (device, boot, seq) of frames written but not yet durable. */
  private readonly uncommitted = new Set<string>();
  /** Transactions that failed so far. */
  private commitFailures = 0;
  private readonly windows = new Map<string, ReplayWindow>();
  private readonly replayLimits: ReplayLimits;
  private readonly policyOf: IngestOptions['policyOf'];

  constructor(
    private readonly store: Store,
    private readonly blockLog: BlockLog,
    private readonly log: Logger,
    opts: Pick<IngestOptions, 'replayBoots' | 'replayRanges' | 'policyOf'>,
  ) {
    this.replayLimits = {
      boots: opts.replayBoots ?? DEFAULT_REPLAY_LIMITS.boots,
      ranges: opts.replayRanges ?? DEFAULT_REPLAY_LIMITS.ranges,
    };
    ReplayWindow.empty(this.replayLimits); // refuses limits that are not positive integers
    this.policyOf = opts.policyOf;
  }

  /** Transactions that failed so far: a duplicate decided under an earlier count lost its original. */
  get failures(): number {
    return this.commitFailures;
  }

  commitFailed(): void {
    this.commitFailures++;
  }

  /** A stored frame's write landed or failed: it is no longer waiting. */
  settled(key: string): void {
    this.uncommitted.delete(key);
  }

  /** Decides a verified batch and adds its stored frames to `blocks` (by policy); a bug fails the batch, not the pipeline. */
  decideSafely(batch: Decided[], results: boolean[] | undefined, blocks: Map<string | undefined, FrameEntry[]>): void {
    try {
      // The batch's frames join the group's blocks only if the whole batch was decided.
      for (const [policy, frames] of this.decide(batch, results)) {
        const into = blocks.get(policy);
        if (into) into.push(...frames);
        else blocks.set(policy, frames);
      }
    } catch (err) {
      // A bug here must not wedge the pipeline: fail the batch (not acked, so senders resend).
      this.log.error({ err }, 'ingest decision failed');
      for (const e of batch) {
        if (e.outcome && !e.stored) continue;
        if (e.stored) this.uncommitted.delete(e.stored.key);
        e.stored = undefined;
        e.outcome = failed('internal-error', String(err));
      }
    }
  }

  /**
   * Applies signatures, body decoding and replay windows in submission order; queues writes.
   * Returns the stored frames by policy, for the group's blocks (queued by the caller in the
   * same turn, so in the same transaction: a frame is acked only once its block is durable too).
   */
  private decide(batch: Decided[], results: boolean[] | undefined): Map<string | undefined, FrameEntry[]> {
    let i = 0;
    const touched = new Set<string>();
    // One block per policy: a batch's frames grouped by their policy tag.
    const blockFrames = new Map<string | undefined, FrameEntry[]>();
    for (const e of batch) {
      if (e.outcome || !e.job) continue;
      const ok = results?.[i++];
      const device = e.device!;
      if (ok === undefined) {
        e.outcome = failed('verify-failed', 'verification did not complete');
        continue;
      }
      if (!ok) {
        e.outcome = rejected('bad-signature', `signature does not verify under ${device}'s key`, device);
        continue;
      }
      // decodeBody's answer, by the reading fast path where the bytes have its shape.
      const fast = decodeBodyResolved(e.payload!);
      const decoded = fast?.body;
      if (!decoded) {
        const err = decodeBody(e.payload!);
        e.outcome = rejected(
          'bad-body',
          err.ok ? 'body does not decode' : `${err.error.code}: ${err.error.message}`,
          device,
        );
        continue;
      }
      if (decoded.type !== 'reading' && decoded.type !== 'command-ack') {
        e.outcome = rejected('bad-body', `a device may not send a ${decoded.type}`, device);
        continue;
      }
      const { boot, seq } = decoded;
      const key = `${device}\u0000${boot}\u0000${seq}`;
      const win = this.window(device);
      const verdict = win.check(boot, seq);
      // The memory only says "maybe seen": the log (or an uncommitted batch) must confirm, so a
      // frame whose earlier copy failed to commit is stored when resent. A frame this gateway
      // never saw is stored even if a sibling's copy was synced here: hearing it is what marks
      // the device heard here (actuation routes, leases); the view shows it once either way.
      // `fresh` is exact within the memory's bounds (the last replayBoots boots, replayRanges
      // ranges each), so a previous boot's backlog arriving after the new boot is kept.
      if (verdict !== 'fresh' && (this.uncommitted.has(key) || this.blockLog.holds(device, boot, seq))) {
        e.outcome = { status: 'duplicate', device, boot, seq };
        if (this.uncommitted.has(key)) e.dupOfUncommitted = this.commitFailures;
        continue;
      }
      if (verdict === 'outside') {
        e.outcome = rejected(
          'replay',
          `(boot ${boot}, seq ${seq}) is older than the replay memory (last ${this.replayLimits.boots} boots, ${this.replayLimits.ranges} seq ranges each) and is not stored`,
          device,
        );
        continue;
      }
      if (verdict === 'fresh') win.mark(boot, seq);
      touched.add(device);
      this.uncommitted.add(key);
      e.stored = { body: decoded, key };
      e.outcome = { status: 'stored', device, boot, seq };
      const policy = this.policyOf?.({
        device,
        model: e.record?.model,
        site: e.record?.site,
        records: decoded.type === 'reading' ? decoded.records : undefined,
      });
      let group = blockFrames.get(policy);
      if (!group) blockFrames.set(policy, (group = []));
      knownFrameId(e.bytes, { device, boot, seq }, decoded, fast.resolved);
      group.push({ frame: e.bytes, rxTime: e.rxTime, transport: e.meta.transport });
    }
    for (const d of touched) this.store.putWindow(d, this.windows.get(d)!.toRecord());
    return blockFrames;
  }

  private window(device: string): ReplayWindow {
    let w = this.windows.get(device);
    if (!w) {
      const rec = this.store.getWindow(device);
      w = rec ? ReplayWindow.fromRecord(rec, this.replayLimits) : ReplayWindow.empty(this.replayLimits);
      this.windows.set(device, w);
    }
    return w;
  }
}
