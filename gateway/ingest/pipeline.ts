/**
 * Ingest: decode → key lookup → verify (worker pool) → replay window → body
 * decode → durable append → outcome. Frames submitted in one event-loop turn
 * form a batch verified together on the worker pool; every batch verified
 * while the previous transaction flushes is decided in order and written in
 * the next lmdb transaction (group commit), and answered in submission order
 * once that transaction is on disk, so a transport acks a frame only when it
 * is durable.
 */
import { Subject } from 'rxjs';
import {
  decodeBody,
  decodeBodyResolved,
  decodeSign1,
  type FrameEntry,
  kidToDeviceId,
  MAX_FRAME_BYTES,
  type ReadingBody,
  Sign1Payloads,
  sigStructure,
  type UplinkBody,
} from '../../protocols/index.js';
import { type Logger, LogThrottle } from '../logger.js';
import type { Registry } from '../registry.js';
import type { BlockLog } from '../log/block-log.js';
import { knownFrameId } from '../log/verify.js';
import type { SpaceCheck } from '../store/free-space.js';
import type { Store } from '../store/store.js';
import type { FailReason, IngestOutcome, RejectReason } from './outcome.js';
import { DEFAULT_REPLAY_LIMITS, type ReplayLimits, ReplayWindow } from './replay-window.js';
import { IngestStats } from './stats.js';
import type { VerifyJob, VerifyPool } from './verify-pool.js';

export interface FrameMeta {
  /** mqtt, serial, ble, … */
  readonly transport: string;
  /** The device the transport says sent it (MQTT topic, serial port binding), if any. */
  readonly claimedDevice?: string;
  /** Connection or port, for logs. */
  readonly source?: string;
}

/** A frame that is durable in its block, as emitted on `frames$` (frames this gateway heard). */
export interface IngestedFrame {
  readonly device: string;
  readonly rxTime: number;
  readonly transport: string;
  readonly body: UplinkBody;
  readonly frame: Uint8Array;
}

/** One answered frame, as emitted on `outcomes$` (metrics, per-device rejection views). */
export interface OutcomeEvent {
  readonly outcome: IngestOutcome;
  readonly transport: string;
  /** The device the frame named or the transport claimed, if known. */
  readonly device?: string;
  /** Submit to answer (for stored frames: to durable), ms. */
  readonly latencyMs: number;
}

export interface IngestOptions {
  /** Boots remembered per device by the replay memory (replay-window.ts). */
  readonly replayBoots?: number;
  /** Ranges of stored seqs remembered per boot. */
  readonly replayRanges?: number;
  /** Frames accepted but not yet answered before new ones are refused as overloaded. */
  readonly maxInflight?: number;
  readonly maxFrameBytes?: number;
  /** Most frames verified and committed together. */
  readonly maxBatch?: number;
  /**
   * How long a verified frame may wait for others before its transaction starts, ms (0: commit
   * at once). At low rates a group would hold one frame and its block would cost more than the
   * frame; this bounds the latency it adds to any frame, measured from the oldest one waiting.
   */
  readonly coalesceMs?: number | undefined;
  readonly now?: () => number;
  /** The policy tag of a stored frame (gateway/policy/tagging.ts); frames of one policy share blocks. Default: the `default` policy. */
  /** Free-space guard: while it says no, nothing is written (frames fail as `disk-low`, authoring waits). */
  readonly space?: SpaceCheck;
  readonly policyOf?: (f: {
    device: string;
    model?: string | undefined;
    site?: string | undefined;
    records?: ReadingBody['records'] | undefined;
  }) => string;
}

interface Verified {
  readonly batch: Entry[];
  done: boolean;
  results?: boolean[];
}

interface Entry {
  readonly bytes: Uint8Array;
  readonly meta: FrameMeta;
  readonly t0: number;
  readonly rxTime: number;
  resolve: (o: IngestOutcome) => void;
  outcome?: IngestOutcome;
  device?: string;
  job?: VerifyJob;
  payload?: Uint8Array;
  /** The device's registry record (tagging looks at its model and site). */
  record?: { readonly model?: string; readonly site?: string };
  /** For a duplicate of a frame that was not yet durable: the commit-failure count when decided. */
  dupOfUncommitted?: number;
  /** Set for frames appended to the store in this batch. */
  stored?: { body: UplinkBody; key: string } | undefined;
}

export class IngestPipeline {
  readonly stats = new IngestStats();
  /** Every durable frame, in commit order. */
  readonly frames$ = new Subject<IngestedFrame>();
  /** Every outcome (stored, duplicate, rejected, failed), in answer order. */
  readonly outcomes$ = new Subject<OutcomeEvent>();
  private batch: Entry[] = [];
  private scheduled = false;
  /** Batches in submission order, waiting for verification or for the commit in progress. */
  private readonly queue: Verified[] = [];
  private committing = false;
  /** Block authoring waiting for the commit loop (appendInCommit). */
  private readonly logTasks: (() => void)[] = [];
  /** The running commit loop, if any. */
  private loop: Promise<void> = Promise.resolve();
  /** (device, boot, seq) of frames written but not yet durable. */
  private readonly uncommitted = new Set<string>();
  /** Transactions that failed so far. */
  private commitFailures = 0;
  private inflight = 0;
  private closed = false;
  private readonly windows = new Map<string, ReplayWindow>();
  /** Envelopes seen before are not decoded again: a device's frames share theirs byte for byte. */
  private readonly envelopes = new Sign1Payloads(4_096);
  private readonly throttle: LogThrottle;
  private readonly replayLimits: ReplayLimits;
  private readonly maxInflight: number;
  private readonly maxFrameBytes: number;
  private readonly maxBatch: number;
  private readonly now: () => number;
  private readonly policyOf: IngestOptions['policyOf'];
  private readonly space: SpaceCheck | undefined;
  /** A retry of deferred authoring while the disk is low. */
  private retry: NodeJS.Timeout | undefined;
  private readonly coalesceMs: number;
  /** The commit waiting out the coalescing window, if any. */
  private coalesce: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly pool: VerifyPool,
    private readonly log: Logger,
    opts: IngestOptions = {},
    /** Each batch's frames become signed frames blocks (their only copy), in the batch's transaction. */
    private readonly blockLog: BlockLog,
  ) {
    this.replayLimits = {
      boots: opts.replayBoots ?? DEFAULT_REPLAY_LIMITS.boots,
      ranges: opts.replayRanges ?? DEFAULT_REPLAY_LIMITS.ranges,
    };
    ReplayWindow.empty(this.replayLimits); // refuses limits that are not positive integers
    this.maxInflight = opts.maxInflight ?? 20_000;
    this.maxFrameBytes = Math.min(opts.maxFrameBytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
    this.maxBatch = opts.maxBatch ?? 256;
    this.coalesceMs = opts.coalesceMs ?? DEFAULT_COALESCE_MS;
    this.now = opts.now ?? Date.now;
    this.policyOf = opts.policyOf;
    this.space = opts.space;
    this.throttle = new LogThrottle(log);
  }

  /** Frames submitted and not yet answered. */
  get pending(): number {
    return this.inflight;
  }

  /** Submits one frame. Never rejects: the outcome says what happened. */
  submit(bytes: Uint8Array, meta: FrameMeta): Promise<IngestOutcome> {
    if (this.closed) return Promise.resolve(this.count(fail('closed', 'gateway is shutting down'), meta, 0));
    if (this.inflight >= this.maxInflight) {
      return Promise.resolve(this.count(fail('overloaded', `${this.inflight} frames in flight`), meta, 0));
    }
    return new Promise((resolve) => {
      const entry: Entry = { bytes, meta, t0: performance.now(), rxTime: this.now(), resolve };
      try {
        this.prepare(entry);
      } catch (err) {
        // A bug (or an unreadable registry) must still yield an outcome: transient, so it is resent.
        this.log.error({ err }, 'ingest pre-check failed');
        entry.outcome = fail('internal-error', String(err));
      }
      this.inflight++;
      this.batch.push(entry);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Synchronous checks before verification: size, envelope, kid, registry. */
  private prepare(e: Entry): void {
    if (e.bytes.length > this.maxFrameBytes) {
      e.outcome = reject('too-large', `${e.bytes.length} bytes exceeds ${this.maxFrameBytes}`);
      return;
    }
    // The fast path answers what decodeSign1 answers; where it does not answer, decodeSign1 says why.
    let parts = this.envelopes.parts(e.bytes);
    if (!parts) {
      const cose = decodeSign1(e.bytes, { maxBytes: this.maxFrameBytes });
      if (!cose.ok) {
        e.outcome = reject(
          cose.error.code === 'cose/unsupported-alg' ? 'unsupported-alg' : 'malformed',
          `${cose.error.code}: ${cose.error.message}`,
        );
        return;
      }
      parts = cose.value;
    }
    // decodeSign1 has refused any alg but EdDSA/Ed25519 (cose/unsupported-alg above).
    const { kid, protectedBytes, payload, signature } = parts;
    const device = kidToDeviceId(kid);
    if (device === undefined) {
      e.outcome = reject('unknown-device', `kid ${Buffer.from(kid).toString('hex')} is not a device id`);
      return;
    }
    e.device = device;
    if (e.meta.claimedDevice !== undefined && e.meta.claimedDevice !== device) {
      e.outcome = reject('device-mismatch', `frame signed as ${device} arrived for ${e.meta.claimedDevice}`, device);
      return;
    }
    const active = this.registry.active(device);
    if (!active) {
      const known = this.registry.get(device);
      e.outcome = known
        ? reject('revoked-device', `device ${device} is revoked`, device)
        : reject('unknown-device', `device ${device} is not enrolled`, device);
      return;
    }
    e.payload = payload;
    e.record = active.record;
    e.job = { publicKey: active.publicKey, signature, message: sigStructure(protectedBytes, payload) };
  }

  private flush(): void {
    // Bounded batches keep verification streaming under load instead of stop-and-go on one huge batch.
    const batch = this.batch.splice(0, this.maxBatch);
    this.scheduled = this.batch.length > 0;
    if (this.scheduled) setImmediate(() => this.flush());
    const jobs = batch.filter((e) => e.job).map((e) => e.job!);
    const item: Verified = { batch, done: false };
    // Verification overlaps the commit in progress; decisions wait for it (commitLoop).
    this.pool.verify(jobs).then(
      (r) => {
        item.results = r;
        item.done = true;
        this.kick();
      },
      (err: unknown) => {
        this.log.error({ err }, 'signature verification failed');
        item.done = true;
        this.kick();
      },
    );
    this.queue.push(item);
  }

  private kick(): void {
    if (this.committing) return;
    const wait = this.coalesceWait();
    if (wait > 0) {
      this.coalesce ??= setTimeout(() => {
        this.coalesce = undefined;
        this.kick();
      }, wait);
      return;
    }
    clearTimeout(this.coalesce);
    this.coalesce = undefined;
    this.loop = this.commitLoop();
  }

  /**
   * Milliseconds to hold the next transaction open for more frames: until the oldest verified
   * frame has waited `coalesceMs`, unless a full batch is ready, authoring is waiting, or the
   * pipeline is closing. Under load frames wait through the commit before, so this is 0.
   */
  private coalesceWait(): number {
    if (this.coalesceMs <= 0 || this.closed || this.logTasks.length > 0) return 0;
    let ready = 0;
    for (const v of this.queue) {
      if (!v.done) break;
      ready += v.batch.length;
    }
    const oldest = this.queue[0];
    if (!oldest?.done || ready >= this.maxBatch) return 0;
    const age = performance.now() - (oldest.batch[0]?.t0 ?? 0);
    return Math.max(0, Math.ceil(this.coalesceMs - age));
  }

  /**
   * Runs `author` (it authors log blocks, e.g. actuation audit records) inside the commit loop,
   * so its blocks chain only onto committed blocks and share the next transaction with the
   * frames blocks (a block is never chained onto one whose commit is in doubt).
   */
  appendInCommit(author: () => void): void {
    if (this.closed && !this.committing) return author();
    this.logTasks.push(author);
    this.kick();
  }

  /**
   * Group commit: one transaction at a time, holding every batch already
   * verified, in submission order. Serialising commits keeps the log's chain
   * (each block names the previous one) from running ahead of what is durable;
   * groups grow with load, so throughput does not depend on commit latency.
   */
  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      while (this.queue[0]?.done || this.logTasks.length > 0) {
        const group: Verified[] = [];
        while (this.queue[0]?.done) group.push(this.queue.shift()!);
        if (this.space && !this.space.writable()) {
          this.refuseLow(group);
          break;
        }
        // One block per policy for the whole group (not per batch): under load the group holds
        // many batches, and coalescing them costs no latency (same transaction either way).
        const blocks = new Map<string | undefined, FrameEntry[]>();
        for (const g of group) this.decideSafely(g.batch, g.results, blocks);
        try {
          // Journaled with their view entries; sealed into signed blocks later (gateway/log/journal.ts).
          for (const [policy, frames] of blocks) this.blockLog.journalFrames(frames, policy);
        } catch (err) {
          // As a failed decision: nothing of the group is acked (senders resend), the loop goes on.
          this.log.error({ err }, "logging the group's blocks failed");
          for (const g of group) this.failStored(g.batch, err);
        }
        for (const author of this.logTasks.splice(0)) {
          try {
            author();
          } catch (err) {
            this.log.error({ err }, 'log block not authored');
          }
        }
        let failure: unknown;
        try {
          await this.store.durable();
        } catch (err) {
          failure = err;
        }
        for (const g of group) {
          if (failure !== undefined) this.failStored(g.batch, failure);
          for (const e of g.batch) {
            // Its original was uncommitted and a commit has failed since: do not ack on its behalf.
            if (e.dupOfUncommitted !== undefined && e.dupOfUncommitted !== this.commitFailures) {
              e.outcome = fail('store-failed', 'the earlier copy of this frame did not commit');
            }
            this.finish(e);
          }
        }
      }
    } finally {
      this.committing = false;
    }
  }

  /**
   * Free space is below the floor: nothing is written, so lmdb never meets ENOSPC. Frames not
   * already rejected fail as `disk-low` (not acked; devices resend) without touching replay
   * windows; authoring waits for a later pass, retried on a timer so it resumes by itself.
   */
  private refuseLow(group: Verified[]): void {
    for (const g of group) {
      for (const e of g.batch) {
        if (!e.outcome) e.outcome = fail('disk-low', 'free space of the data directory is below ingest.minFreeBytes');
        this.finish(e);
      }
    }
    if (this.logTasks.length > 0 && !this.retry) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.kick();
      }, 250);
      this.retry.unref();
    }
  }

  private decideSafely(
    batch: Entry[],
    results: boolean[] | undefined,
    blocks: Map<string | undefined, FrameEntry[]>,
  ): void {
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
        e.outcome = fail('internal-error', String(err));
      }
    }
  }

  /**
   * Applies signatures, body decoding and replay windows in submission order; queues writes.
   * Returns the stored frames by policy, for the group's blocks (queued by the caller in the
   * same turn, so in the same transaction: a frame is acked only once its block is durable too).
   */
  private decide(batch: Entry[], results: boolean[] | undefined): Map<string | undefined, FrameEntry[]> {
    let i = 0;
    const touched = new Set<string>();
    // One block per policy: a batch's frames grouped by their policy tag.
    const blockFrames = new Map<string | undefined, FrameEntry[]>();
    for (const e of batch) {
      if (e.outcome || !e.job) continue;
      const ok = results?.[i++];
      const device = e.device!;
      if (ok === undefined) {
        e.outcome = fail('verify-failed', 'verification did not complete');
        continue;
      }
      if (!ok) {
        e.outcome = reject('bad-signature', `signature does not verify under ${device}'s key`, device);
        continue;
      }
      // decodeBody's answer, by the reading fast path where the bytes have its shape.
      const fast = decodeBodyResolved(e.payload!);
      const decoded = fast?.body;
      if (!decoded) {
        const err = decodeBody(e.payload!);
        e.outcome = reject(
          'bad-body',
          err.ok ? 'body does not decode' : `${err.error.code}: ${err.error.message}`,
          device,
        );
        continue;
      }
      if (decoded.type !== 'reading' && decoded.type !== 'command-ack') {
        e.outcome = reject('bad-body', `a device may not send a ${decoded.type}`, device);
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
        e.outcome = reject(
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

  /** The batch's transaction did not land: its frames are not acked, so senders resend them. */
  private failStored(batch: Entry[], err: unknown): void {
    this.commitFailures++;
    this.throttle.error('store-failed', { err }, 'store commit failed; frames will not be acked');
    for (const e of batch) {
      if (!e.stored) continue;
      this.uncommitted.delete(e.stored.key);
      e.stored = undefined;
      e.outcome = fail('store-failed', String((err as Error)?.message ?? err));
    }
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

  private finish(e: Entry): void {
    this.inflight--;
    const o = this.count(e.outcome ?? fail('verify-failed', 'no decision'), e.meta, performance.now() - e.t0, e.device);
    if (e.stored) {
      this.uncommitted.delete(e.stored.key);
      this.frames$.next({
        device: e.device!,
        rxTime: e.rxTime,
        transport: e.meta.transport,
        body: e.stored.body,
        frame: e.bytes,
      });
    }
    e.resolve(o);
  }

  private count(o: IngestOutcome, meta: FrameMeta, latencyMs: number, device?: string): IngestOutcome {
    this.stats.count(o, meta.transport, latencyMs);
    const dev = 'device' in o && o.device !== undefined ? o.device : (device ?? meta.claimedDevice);
    this.outcomes$.next({
      outcome: o,
      transport: meta.transport,
      latencyMs,
      ...(dev !== undefined && { device: dev }),
    });
    if (o.status === 'duplicate') {
      // A resend after a lost ack, or a replay of a stored frame: harmless, but worth seeing.
      this.throttle.info(
        'duplicate',
        { device: o.device, boot: o.boot, seq: o.seq, transport: meta.transport, source: meta.source },
        'duplicate frame acked again, not stored',
      );
    } else if (o.status === 'rejected') {
      this.throttle.warn(
        `rejected:${o.reason}`,
        {
          device: o.device ?? device,
          reason: o.reason,
          transport: meta.transport,
          source: meta.source,
          detail: o.detail,
        },
        'frame rejected',
      );
    } else if (o.status === 'failed') {
      this.throttle.warn(
        `failed:${o.reason}`,
        { device, reason: o.reason, transport: meta.transport, source: meta.source, detail: o.detail },
        'frame not ingested (will be retried by the sender)',
      );
    }
    return o;
  }

  /** Stops accepting frames and waits for those in flight. */
  async close(): Promise<void> {
    this.closed = true;
    this.kick(); // a commit waiting out the coalescing window goes now
    while (this.scheduled || this.inflight > 0) {
      await this.loop;
      await new Promise((r) => setImmediate(r));
    }
    clearTimeout(this.retry);
    clearTimeout(this.coalesce);
    // Authoring deferred by a low disk and never written: say so (its records are not in the log).
    if (this.logTasks.length > 0)
      this.log.warn(
        { tasks: this.logTasks.length },
        'closing with log blocks deferred by low disk space; they are not logged',
      );
    this.frames$.complete();
    this.outcomes$.complete();
  }
}

/** Frames verified within this many ms of the first share its transaction and blocks. */
export const DEFAULT_COALESCE_MS = 8;

function reject(reason: RejectReason, detail: string, device?: string): IngestOutcome {
  return { status: 'rejected', reason, detail, ...(device !== undefined && { device }) };
}

function fail(reason: FailReason, detail: string): IngestOutcome {
  return { status: 'failed', reason, detail };
}
