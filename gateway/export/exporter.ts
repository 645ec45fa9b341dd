/**
 * One sink's export loop: read the next batch after the sink's durable cursor from the log
 * (ExportSource), hand it to the sink, and move the cursor only once the sink confirmed
 * (a PostgreSQL COMMIT, every PUBACK). A failure keeps the cursor where it was and retries
 * with backoff (0.5 s doubling to 30 s), so a sink that was down catches up from the log,
 * at most `maxFramesPerSecond`, oldest or newest first. While a batch is in flight the next
 * one is read (the log and the far end work at once); nothing else is buffered in memory.
 */
import type { Logger } from '../logger.js';
import { mergeCursors } from './cursor-log.js';
import type { CursorStore } from './cursors.js';
import {
  chainKey,
  type ExportBatch,
  type ExportCursor,
  type ExportFrame,
  type ExportSource,
  pendingBlocks,
  type ResendPriority,
} from './source.js';
import type { SinkSharing } from './takeover.js';

/** A sink that confirms the way the exporter needs: deliver resolves only once the far end has it. */
export interface ExportTarget {
  readonly name: string;
  deliver(frames: readonly ExportFrame[]): Promise<void>;
  /** Told the batch read ahead, which `deliver` will be given next unless something changed (DataSink.prepare). */
  prepare?(frames: readonly ExportFrame[]): void;
  /** Local targets (same lmdb environment) write data and cursor in one transaction. */
  deliverWithCursor?(frames: readonly ExportFrame[], writeCursor: () => void): Promise<void>;
}

export interface ExporterOptions {
  readonly batchFrames: number;
  readonly maxFramesPerSecond: number;
  readonly resendPriority: ResendPriority;
  /** Streams (policies) this sink may read. */
  readonly readable: (stream: string) => boolean;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Without news from the log, look again after this long (a grant may have made more readable). */
  readonly pollMs?: number;
  /** A sink shared by siblings (takeover.ts): exported only while active, its cursor logged as blocks. */
  readonly sharing?: SinkSharing;
}

/** `standby`: a shared sink another gateway exports (takeover.ts). */
export type ExporterState = 'starting' | 'caught-up' | 'exporting' | 'failing' | 'standby' | 'stopped';

export interface ExporterStatus {
  readonly sink: string;
  readonly state: ExporterState;
  readonly frames: number;
  readonly batches: number;
  readonly failures: number;
  readonly lagBlocks: number;
  /** How long the sink has been behind (0 when caught up). */
  readonly lagSeconds: number;
  readonly lastError?: string;
  readonly lastDelivered?: string;
}

export class SinkExporter {
  private cursor: ExportCursor;
  private state: ExporterState = 'starting';
  private stopped = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private readonly unsubscribe: () => void;
  private frames = 0;
  private batches = 0;
  private failures = 0;
  private lastError?: string;
  private lastDelivered?: number;
  /**
   * Since when the sink has been behind: the first block it may not have had, noticed at start
   * (a backlog of unknown age) or when the log said new blocks were durable; undefined once a
   * batch read the whole log and was confirmed. Not "since the log was last found empty": a
   * sink that keeps up with steady ingest seldom finds it empty.
   */
  private behindSince: number | undefined = Date.now();
  /** The first new-blocks notice since the last read (blocks that read may not have had). */
  private noticedSinceRead?: number;
  /** Cursors other gateways logged for this shared sink, merged in between batches. */
  private remote?: ExportCursor;
  private delivering = false;

  constructor(
    private readonly target: ExportTarget,
    private readonly source: ExportSource,
    private readonly cursors: CursorStore,
    private readonly opts: ExporterOptions,
    private readonly log: Logger,
  ) {
    this.cursor = cursors.get(target.name);
    // New blocks end a caught-up wait, not a failure's backoff: a sink that is down is not retried per block.
    this.unsubscribe = source.onChange(() => {
      const now = Date.now();
      this.behindSince ??= now;
      this.noticedSinceRead ??= now;
      if (this.state !== 'failing') this.wake?.();
    });
    opts.sharing?.onRemote((c) => {
      this.remote = this.remote ? mergeCursors(this.remote, c) : c;
      if (!this.delivering) this.absorbRemote();
    });
  }

  /** Merges what other gateways logged for this sink; true when it moved the cursor. */
  private absorbRemote(): boolean {
    if (!this.remote) return false;
    const merged = mergeCursors(this.cursor, this.remote);
    this.remote = undefined;
    if (merged === this.cursor) return false;
    this.cursor = merged;
    return true;
  }

  get name(): string {
    return this.target.name;
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    let backoff = min;
    /** The batch after the one in flight, read while the sink was busy with it. */
    let ahead: ExportBatch | undefined;
    const sharing = this.opts.sharing;
    while (!this.stopped) {
      if (this.absorbRemote()) ahead = undefined;
      if (sharing && !sharing.active(this.lagBlocks() > 0)) {
        ahead = undefined;
        this.state = 'standby';
        this.behindSince = undefined;
        await this.pause(this.opts.pollMs ?? 1000);
        continue;
      }
      let batch = ahead && this.stillReadable(ahead) ? ahead : undefined;
      ahead = undefined;
      batch ??= this.read(this.cursor);
      if (batch.blocks === 0) {
        this.state = 'caught-up';
        this.behindSince = this.noticedSinceRead;
        await this.pause(this.opts.pollMs ?? 1000);
        continue;
      }
      const started = Date.now();
      this.delivering = true;
      try {
        if (this.target.deliverWithCursor)
          await this.target.deliverWithCursor(batch.frames, () =>
            this.cursors.putInTransaction(this.target.name, batch.cursor),
          );
        else {
          const sent = this.target.deliver(batch.frames);
          // The log is read while the far end works; the cursor still moves only once it confirmed.
          if (batch.more)
            try {
              ahead = this.read(batch.cursor);
              this.target.prepare?.(ahead.frames);
            } catch {
              ahead = undefined; // read again, in turn, once this batch is settled
            }
          await sent;
          await this.cursors.save(this.target.name, batch.cursor);
        }
      } catch (e) {
        ahead = undefined;
        this.failures++;
        const msg = e instanceof Error ? e.message : String(e);
        if (this.state !== 'failing' || msg !== this.lastError)
          this.log.warn({ sink: this.name, err: msg, retryMs: backoff }, `export to ${this.name} failed: ${msg}`);
        this.lastError = msg;
        this.state = 'failing';
        this.delivering = false;
        await this.pause(backoff);
        backoff = Math.min(max, backoff * 2);
        continue;
      }
      this.delivering = false;
      if (this.state === 'failing') this.log.info({ sink: this.name }, `export to ${this.name} resumed`);
      backoff = min;
      this.state = 'exporting';
      this.cursor = batch.cursor;
      sharing?.moved(batch.cursor);
      if (this.absorbRemote()) ahead = undefined;
      this.frames += batch.frames.length;
      this.batches++;
      this.lastDelivered = Date.now();
      // The whole log as read is confirmed: behind only by what was noticed since the read.
      if (!batch.more) this.behindSince = this.noticedSinceRead;
      const rate = this.opts.maxFramesPerSecond;
      if (rate > 0) {
        const wait = (batch.frames.length / rate) * 1000 - (Date.now() - started);
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private read(after: ExportCursor): ExportBatch {
    this.noticedSinceRead = undefined;
    return this.source.next(after, this.opts.batchFrames, this.opts.resendPriority, this.opts.readable);
  }

  /** Whether every chain a batch read ahead moves is still readable (a revocation since drops it). */
  private stillReadable(batch: ExportBatch): boolean {
    for (const [key, c] of Object.entries(batch.cursor))
      if (c !== this.cursor[key] && !this.opts.readable(key.slice(key.indexOf('/') + 1))) return false;
    return true;
  }

  /**
   * The highest seq of a chain below which every block is confirmed (-1: none), or undefined
   * when this sink may not read the stream (it never waits for it). The storage budget prunes below it.
   */
  confirmedThrough(author: string, stream: string): number | undefined {
    if (!this.opts.readable(stream)) return undefined;
    return this.cursor[chainKey(author, stream)]?.done ?? -1;
  }

  /** Blocks of readable chains not yet confirmed, and those still to be sealed from the journal. */
  lagBlocks(): number {
    let n = this.source.unsealed?.(this.opts.readable) ?? 0;
    for (const c of this.source.chains())
      if (this.opts.readable(c.stream)) n += pendingBlocks(this.cursor[chainKey(c.author, c.stream)], c);
    return n;
  }

  status(now = Date.now()): ExporterStatus {
    const lagBlocks = this.lagBlocks();
    return {
      sink: this.name,
      state: this.state,
      frames: this.frames,
      batches: this.batches,
      failures: this.failures,
      lagBlocks,
      lagSeconds:
        lagBlocks === 0 || this.behindSince === undefined || this.state === 'standby'
          ? 0
          : Math.max(0, (now - this.behindSince) / 1000),
      ...(this.lastError !== undefined && this.state === 'failing' && { lastError: this.lastError }),
      ...(this.lastDelivered !== undefined && { lastDelivered: new Date(this.lastDelivered).toISOString() }),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    this.unsubscribe();
    this.wake?.();
    await this.loop;
    await this.opts.sharing?.stop();
  }
}
