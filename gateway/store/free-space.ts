/**
 * Free-space guard: writes are refused while the data directory's filesystem has less than
 * a floor of free bytes, so lmdb never reaches ENOSPC in production (the chaos campaign saw
 * lmdb-js abort the process natively after a failed commit on a full disk). A refusal is a
 * transient failure, like a failed commit: frames are not acked (devices resend), sibling
 * blocks are not applied (the next exchange resends), authoring waits. statfs is read at
 * most once per interval (default 250 ms), never per frame. Administrative writes (registry
 * enrol and revoke, the identity file, queued policy ops) call `require` instead: refused, they
 * throw a DiskLowError (code `disk-low`) before anything is written.
 */
import { statfsSync } from 'node:fs';
import { type Logger, LogThrottle } from '../logger.js';

/** What writers consult before queuing lmdb writes. */
export interface SpaceCheck {
  /** False while free space is below the floor (writes must wait). */
  writable(): boolean;
}

export interface FreeSpaceOptions {
  /** Refuse writes below this many free bytes; 0 disables the guard. */
  readonly minFreeBytes: number;
  /** How long a statfs reading is reused, ms (default 250). */
  readonly intervalMs?: number;
  readonly now?: () => number;
  /** Free bytes available to the gateway's user at `dir` (default: statfs bavail × bsize). */
  readonly freeBytes?: (dir: string) => number;
  readonly log?: Logger;
}

/** An administrative write refused by the free-space guard; nothing of it was written. */
export class DiskLowError extends Error {
  readonly code = 'disk-low';
  constructor(
    /** What was refused, e.g. "enrolling device press-01". */
    readonly what: string,
    readonly free: number,
    readonly minFreeBytes: number,
    readonly dir: string,
  ) {
    super(
      `${what} refused: ${dir} has ${free} bytes free, below the floor of ${minFreeBytes} (ingest.minFreeBytes); nothing was written (disk-low). Free some space and retry.`,
    );
    this.name = 'DiskLowError';
  }
}

/** The default floor (config `ingest.minFreeBytes`). */
export const DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024;

export class FreeSpaceGuard implements SpaceCheck {
  /** Times a writer was refused (ingest commits, sync applies, authoring). */
  refusals = 0;
  /** The last reading, bytes (NaN before the first). */
  lastFree = Number.NaN;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private low = false;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly freeBytes: (dir: string) => number;
  private readonly throttle: LogThrottle | undefined;

  constructor(
    readonly dir: string,
    private readonly opts: FreeSpaceOptions,
  ) {
    this.intervalMs = opts.intervalMs ?? 250;
    this.now = opts.now ?? Date.now;
    this.freeBytes = opts.freeBytes ?? statfsFree;
    // One line a second is enough to name the free bytes and the floor while refusals go on.
    this.throttle = opts.log ? new LogThrottle(opts.log, 1) : undefined;
  }

  get minFreeBytes(): number {
    return this.opts.minFreeBytes;
  }

  writable(): boolean {
    if (this.opts.minFreeBytes <= 0) return true;
    const t = this.now();
    if (t - this.checkedAt >= this.intervalMs) {
      this.checkedAt = t;
      const wasLow = this.low;
      try {
        this.lastFree = this.freeBytes(this.dir);
        this.low = this.lastFree < this.opts.minFreeBytes;
      } catch (err) {
        // statfs failing says nothing about space: let lmdb try (a failed commit is handled).
        this.low = false;
        this.throttle?.warn(
          'statfs-failed',
          { dir: this.dir, err: (err as Error).message },
          'cannot read free space of the data directory',
        );
      }
      if (wasLow && !this.low)
        this.opts.log?.info(
          { free: this.lastFree, minFreeBytes: this.opts.minFreeBytes },
          'free space is back above the floor; writes resume',
        );
    }
    if (this.low) {
      this.refusals++;
      this.throttle?.error(
        'disk-low',
        { free: this.lastFree, minFreeBytes: this.opts.minFreeBytes, dir: this.dir },
        `data directory has ${this.lastFree} bytes free, below the floor of ${this.opts.minFreeBytes}: writes refused until space returns`,
      );
    }
    return !this.low;
  }

  /** For an administrative write about to happen: throws DiskLowError while writes are refused. */
  require(what: string): void {
    // A fresh reading: an operator's command is rare, and its answer must reflect the disk now.
    this.checkedAt = Number.NEGATIVE_INFINITY;
    if (!this.writable()) throw new DiskLowError(what, this.lastFree, this.opts.minFreeBytes, this.dir);
  }
}

function statfsFree(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}
