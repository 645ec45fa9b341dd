/**
 * Retention in the running gateway: `log.retention` in the config (per stream, or
 * `default`, a max age such as `30d`; absent: keep forever), per-policy `retention`
 * plugged in through `policyRetention`, and a timer that logs this gateway's
 * revocations not yet logged and authors retention blocks for its own streams
 * (BlockLog.retainByAge). Pruning itself happens in the log, on every replica alike.
 */
import { parseDuration } from '../../protocols/index.js';
import type { Logger } from '../logger.js';
import type { SpaceCheck } from '../store/free-space.js';
import type { SignedBlock } from '../../protocols/index.js';
import type { BlockLog } from './block-log.js';

/** A stream's retention now: where its mark goes, how many blocks go, and the block (unless a dry run). */
export interface RetentionPlan {
  readonly stream: string;
  readonly low: number;
  readonly prunable: number;
  readonly block?: SignedBlock;
}

/**
 * Applies `retentionFor` (ms, or undefined: forever) to the log's own streams at `now`: one
 * retention block per stream with frames blocks older than its limit (BlockLog.retainByAge).
 */
export function retainOwnStreams(
  log: BlockLog,
  retentionFor: (stream: string) => number | undefined,
  now: number,
  dryRun: boolean,
): RetentionPlan[] {
  const out: RetentionPlan[] = [];
  for (const h of log.streamHeads()) {
    if (h.author !== log.author) continue;
    const maxAge = retentionFor(h.stream);
    if (maxAge === undefined) continue;
    const cutoff = now - maxAge;
    const plan = log.planRetention(h.stream, cutoff);
    if (plan.prunable === 0 || plan.low <= log.mark(log.author, h.stream)) continue;
    out.push({ stream: h.stream, ...plan, ...(!dryRun && { block: log.retain(h.stream, plan.low, cutoff) }) });
  }
  return out;
}

/**
 * A max age, in `log.retention` and a policy's `retention`: a duration above zero (`30d`, `12h`,
 * `2w`, `1y`; a bare number is seconds, protocols/duration.ts) → ms, `forever` → Infinity,
 * anything else (zero included) → undefined.
 */
export function parseRetention(v: string | number): number | undefined {
  const ms = parseDuration(v);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/**
 * The max age of a stream: the config's entry for it, else its policy's `retention`,
 * else the config's `default`; undefined (keep forever) when none applies or it says `forever`.
 */
export function retentionResolver(
  config: Readonly<Record<string, string | number>>,
  policyRetention?: (stream: string) => number | undefined,
): (stream: string) => number | undefined {
  const ms = new Map(Object.entries(config).map(([k, v]) => [k, parseRetention(v)]));
  return (stream) => {
    const v = ms.get(stream) ?? policyRetention?.(stream) ?? ms.get('default');
    return v === undefined || !Number.isFinite(v) ? undefined : v;
  };
}

/** Runs `tick` now and every `intervalMs`: revocations first, then retention marks. */
export class RetentionTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: BlockLog,
    private readonly logger: Logger,
    private readonly intervalMs = 30_000,
    /** Free-space guard: a low disk skips the tick (revocations and marks are authored on a later one). */
    private readonly space?: SpaceCheck,
  ) {}

  start(): this {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  tick(now = Date.now()): void {
    if (this.space && !this.space.writable()) return;
    try {
      const revoked = this.log.logRevocations();
      if (revoked.length > 0)
        this.logger.info({ blocks: revoked.length }, `logged ${revoked.length} device revocation(s) for siblings`);
      for (const r of this.log.retainByAge(now)) {
        this.logger.info(
          { stream: r.stream, low: r.low, pruned: r.prunable },
          `retention: pruning ${r.prunable} block(s) of ${r.stream} below seq ${r.low}`,
        );
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'retention tick failed');
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
