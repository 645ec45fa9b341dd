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
import { type FrameEntry, MAX_FRAME_BYTES, type ReadingBody, Sign1Payloads } from '../../protocols/index.js';
import type { Logger } from '../logger.js';
import type { Registry } from '../registry.js';
import type { BlockLog } from '../log/block-log.js';
import type { SpaceCheck } from '../store/free-space.js';
import type { Store } from '../store/store.js';
import { DEFAULT_MAX_INFLIGHT } from '../memory-profile.js';
import { admit } from './admission.js';
import { type Decided, FrameDecisions } from './decisions.js';
import { failed, type FrameMeta, type IngestedFrame, type IngestOutcome, type OutcomeEvent } from './outcome.js';
import { OutcomeReporter } from './outcome-reporter.js';
import type { IngestStats } from './stats.js';
import type { VerifyPool } from './verify-pool.js';

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

interface Entry extends Decided {
  readonly t0: number;
  resolve: (o: IngestOutcome) => void;
}

export class IngestPipeline {
  readonly stats: IngestStats;
  /** Every durable frame, in commit order. */
  readonly frames$ = new Subject<IngestedFrame>();
  /** Every outcome (stored, duplicate, rejected, failed), in answer order. */
  readonly outcomes$: Subject<OutcomeEvent>;
  private readonly reporter: OutcomeReporter;
  /** Each verified frame's fate: body, replay memory, duplicates, policy. */
  private readonly decisions: FrameDecisions;
  private batch: Entry[] = [];
  private scheduled = false;
  /** Batches in submission order, waiting for verification or for the commit in progress. */
  private readonly queue: Verified[] = [];
  private committing = false;
  /** Block authoring waiting for the commit loop (appendInCommit). */
  private readonly logTasks: (() => void)[] = [];
  /** The running commit loop, if any. */
  private loop: Promise<void> = Promise.resolve();
  private inflight = 0;
  private closed = false;
  /** Envelopes seen before are not decoded again: a device's frames share theirs byte for byte. */
  private readonly envelopes = new Sign1Payloads(4_096);
  private readonly maxInflight: number;
  private readonly maxFrameBytes: number;
  private readonly maxBatch: number;
  private readonly now: () => number;
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
    this.decisions = new FrameDecisions(store, blockLog, log, opts);
    this.maxInflight = opts.maxInflight ?? DEFAULT_MAX_INFLIGHT;
    this.maxFrameBytes = Math.min(opts.maxFrameBytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
    this.maxBatch = opts.maxBatch ?? 256;
    this.coalesceMs = opts.coalesceMs ?? DEFAULT_COALESCE_MS;
    this.now = opts.now ?? Date.now;
    this.space = opts.space;
    this.reporter = new OutcomeReporter(log);
    this.stats = this.reporter.stats;
    this.outcomes$ = this.reporter.outcomes$;
  }

  /** Frames submitted and not yet answered. */
  get pending(): number {
    return this.inflight;
  }

  /** Submits one frame. Never rejects: the outcome says what happened. */
  submit(bytes: Uint8Array, meta: FrameMeta): Promise<IngestOutcome> {
    if (this.closed)
      return Promise.resolve(this.reporter.report(failed('closed', 'gateway is shutting down'), meta, 0));
    if (this.inflight >= this.maxInflight) {
      return Promise.resolve(this.reporter.report(failed('overloaded', `${this.inflight} frames in flight`), meta, 0));
    }
    return new Promise((resolve) => {
      const entry: Entry = { bytes, meta, t0: performance.now(), rxTime: this.now(), resolve };
      try {
        admit(entry, this.envelopes, this.registry, this.maxFrameBytes);
      } catch (err) {
        // A bug (or an unreadable registry) must still yield an outcome: transient, so it is resent.
        this.log.error({ err }, 'ingest pre-check failed');
        entry.outcome = failed('internal-error', String(err));
      }
      this.inflight++;
      this.batch.push(entry);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
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
        for (const g of group) this.decisions.decideSafely(g.batch, g.results, blocks);
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
            if (e.dupOfUncommitted !== undefined && e.dupOfUncommitted !== this.decisions.failures) {
              e.outcome = failed('store-failed', 'the earlier copy of this frame did not commit');
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
        if (!e.outcome) e.outcome = failed('disk-low', 'free space of the data directory is below ingest.minFreeBytes');
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

  /** The batch's transaction did not land: its frames are not acked, so senders resend them. */
  private failStored(batch: Entry[], err: unknown): void {
    this.decisions.commitFailed();
    this.reporter.throttle.error('store-failed', { err }, 'store commit failed; frames will not be acked');
    for (const e of batch) {
      if (!e.stored) continue;
      this.decisions.settled(e.stored.key);
      e.stored = undefined;
      e.outcome = failed('store-failed', String((err as Error)?.message ?? err));
    }
  }

  private finish(e: Entry): void {
    this.inflight--;
    const o = this.reporter.report(
      e.outcome ?? failed('verify-failed', 'no decision'),
      e.meta,
      performance.now() - e.t0,
      e.device,
    );
    if (e.stored) {
      this.decisions.settled(e.stored.key);
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
