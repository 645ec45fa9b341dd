/**
 * A sink shared by siblings (config `export.sinks[].owner`): which gateway exports it now,
 * and its cursor in the log (cursor-log.ts).
 *
 * - The owner exports; after each confirmed batch its cursor is logged as a signed block at
 *   most every `cursorBlockSeconds` (the latest position once the interval is up, even if no
 *   batch follows), and once more on a clean stop.
 * - Every other gateway with the sink stands by: it merges the cursor blocks it receives into
 *   its own cursor (so the storage budget there also knows what the sink holds) and exports
 *   nothing while the owner keeps up. When that cursor has left blocks unexported for
 *   `takeoverAfterSeconds` with no newer cursor block from the owner, it takes over: it exports
 *   from the merged cursor and logs its own cursor blocks. A cursor block from the owner
 *   arriving later (it came back, or a partition healed) hands the sink back.
 *
 * A standby resumes from a cursor up to one interval (plus sync delay) old, so it sends again
 * what the owner sent after its last cursor block: the PostgreSQL sink stores it once (keyed by
 * device, boot, seq, record index); the MQTT sink publishes it again (at least once: a
 * subscriber dedupes on the frame's device, boot, seq). Two standbys of one dead owner both
 * take over; their cursors merge alike.
 */
import type { Logger } from '../logger.js';
import type { CursorLog, LoggedCursor } from './cursor-log.js';
import type { ExportCursor } from './source.js';

export interface SharingOptions {
  readonly sink: string;
  /** The owner's key, hex (this gateway's when it owns the sink). */
  readonly ownerKey: string;
  readonly selfKey: string;
  readonly takeoverAfterMs: number;
  readonly cursorBlockMs: number;
  readonly now?: () => number;
}

export class SinkSharing {
  private readonly now: () => number;
  private takenOver = false;
  /** Since when the merged cursor has left blocks unexported with no newer owner block. */
  private behindSince: number | undefined;
  private lastLogged = 0;
  /** The latest confirmed cursor not logged yet. */
  private unlogged: ExportCursor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<(c: ExportCursor) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly opts: SharingOptions,
    private readonly cursors: CursorLog,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? Date.now;
    this.unsubscribe = cursors.onCursor((c) => this.received(c));
  }

  get owner(): boolean {
    return this.opts.ownerKey === this.opts.selfKey;
  }

  /** Cursor blocks of this sink held at start (any author), merged in by the exporter. */
  seed(held: readonly LoggedCursor[]): void {
    for (const c of held) if (c.sink === this.opts.sink) for (const l of this.listeners) l(c.cursor);
  }

  /** `fn` gets each cursor logged for this sink by another gateway. */
  onRemote(fn: (c: ExportCursor) => void): void {
    this.listeners.add(fn);
  }

  private received(c: LoggedCursor): void {
    if (c.sink !== this.opts.sink || c.author === this.opts.selfKey) return;
    for (const l of this.listeners) l(c.cursor);
    if (c.author !== this.opts.ownerKey) return;
    this.behindSince = undefined;
    if (this.takenOver) {
      this.takenOver = false;
      this.log.info({ sink: this.opts.sink }, `sink ${this.opts.sink}: its owner logs its cursor again; standing by`);
    }
  }

  /**
   * Whether this gateway exports the sink now. `lagging`: the merged cursor leaves readable
   * blocks unexported. Called by the exporter before each batch and each wait.
   */
  active(lagging: boolean): boolean {
    if (this.owner || this.takenOver) return true;
    if (!lagging) {
      this.behindSince = undefined;
      return false;
    }
    const now = this.now();
    this.behindSince ??= now;
    if (now - this.behindSince < this.opts.takeoverAfterMs) return false;
    this.takenOver = true;
    this.log.warn(
      { sink: this.opts.sink, behindSeconds: Math.round((now - this.behindSince) / 1000) },
      `sink ${this.opts.sink}: its owner's cursor has not moved for ${Math.round((now - this.behindSince) / 1000)} s while blocks wait; taking it over`,
    );
    return true;
  }

  /** The exporter confirmed a batch: log the cursor now, or once the interval is up. */
  moved(cursor: ExportCursor): void {
    this.unlogged = cursor;
    if (this.timer) return;
    const wait = this.lastLogged + this.opts.cursorBlockMs - this.now();
    if (wait <= 0) return void this.flush().catch(() => {});
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => {});
    }, wait);
    this.timer.unref();
  }

  /** Logs the latest confirmed cursor, if not logged yet; resolves once its block is durable. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      const c = this.unlogged;
      if (!c) return;
      this.unlogged = undefined;
      this.lastLogged = this.now();
      try {
        await this.cursors.append(this.opts.sink, c);
      } catch (err) {
        this.unlogged ??= c; // logged with the next move
        this.log.warn({ sink: this.opts.sink, err: String(err) }, `sink ${this.opts.sink}: cursor block not logged`);
      }
    });
    return this.writing;
  }

  async stop(): Promise<void> {
    await this.flush();
    this.unsubscribe();
  }
}
