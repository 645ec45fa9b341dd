/**
 * The storage budget (`log.maxBytes`, `log.minCopies`; README "Storage budget"): when the
 * store's live bytes exceed the budget, this gateway's own oldest frames blocks go, through a
 * signed retention mark as age retention does, so every replica prunes alike and a fresh
 * sibling accepts the chain starting at the mark. Only blocks every sink that may read them
 * has exported (cursor past them, rollups included) and at least `minCopies` siblings hold
 * go. Siblings' streams are pruned by their own authors' budgets (a mark is signed by its
 * author). Also the figures for status: how many days the budget holds at the current rate,
 * and a warning before ingest would be refused at the free-space floor.
 */
import type { Logger } from '../logger.js';
import type { BlockLog } from './block-log.js';
import { PRUNABLE_KINDS } from './marks.js';

export interface BudgetDeps {
  readonly log: BlockLog;
  /** Live bytes of the store (gateway/store/usage.ts). */
  readonly usedBytes: () => number;
  /** Free bytes of the data directory's filesystem (NaN: unknown). */
  readonly freeBytes: () => number;
  readonly minFreeBytes: number;
  /** 0: no budget (figures only). */
  readonly maxBytes: number;
  readonly minCopies: number;
  /** Highest seq of a chain every sink reading it confirmed (Infinity: no sink reads it). */
  readonly exportedThrough?: (author: string, stream: string) => number;
  /** Per sibling, the highest seq of our own `stream` it holds (-1: not known). */
  readonly heldOwn?: (stream: string) => number[];
  readonly logger: Logger;
  readonly now?: () => number;
}

export type BudgetState = 'off' | 'within' | 'pruning' | 'blocked';

export interface BudgetStatus {
  readonly maxBytes: number;
  readonly usedBytes: number;
  readonly freeBytes: number | null;
  readonly minCopies: number;
  readonly state: BudgetState;
  /** Why nothing more could go while over the budget: sinks behind, or too few sibling copies. */
  readonly blockedBy?: 'export' | 'copies' | 'nothing-own';
  readonly blocksPruned: number;
  /** Frames entering the log per day at the current rate (the last hour). */
  readonly framesPerDay: number;
  readonly bytesPerDay: number;
  /** Days of history the budget holds at the current rate (null: no rate yet, or no budget). */
  readonly budgetDays: number | null;
  /** Days of history held now (oldest frame held to now). */
  readonly historyDays: number | null;
  /** Set when ingest may be refused at the free-space floor: why, and in how many hours at this rate. */
  readonly warning?: string;
  readonly refuseInHours?: number;
}

/** Pruning starts above maxBytes and goes down to this share of it, so it does not run every tick. */
const LOW_WATER = 0.9;
/** Most blocks one mark prunes (one transaction), as age retention. */
const MAX_PER_MARK = 512;
/** Warn when ingest would be refused within this long at the current rate. */
const WARN_HOURS = 24;
const MINUTE = 60_000;
const DAY = 86_400_000;
/** Three significant digits (a small budget at a high rate holds minutes: 0.00347 days). */
const round3 = (x: number): number => Number(x.toPrecision(3));

export class StorageBudget {
  private readonly now: () => number;
  private readonly started: number;
  /** Frames entering the view per minute, the last 60 minutes. */
  private readonly perMinute = new Map<number, number>();
  private readonly unsubscribe: () => void;
  private timer?: NodeJS.Timeout;
  private state: BudgetState;
  private blockedBy?: BudgetStatus['blockedBy'];
  private pruned = 0;
  private lastWarn = '';
  private lastWarnAt = 0;

  constructor(private readonly d: BudgetDeps) {
    this.now = d.now ?? Date.now;
    this.started = this.now();
    this.state = d.maxBytes > 0 ? 'within' : 'off';
    this.unsubscribe = d.log.onFrames((rows) => {
      const m = Math.floor(this.now() / MINUTE);
      this.perMinute.set(m, (this.perMinute.get(m) ?? 0) + rows.length);
      for (const k of this.perMinute.keys()) if (k < m - 60) this.perMinute.delete(k);
    });
  }

  start(intervalMs: number): this {
    this.tick();
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }

  /** Prunes when over the budget (one mark per own stream at most); returns the blocks that go. */
  tick(): number {
    let n = 0;
    try {
      n = this.prune();
    } catch (err) {
      this.d.logger.warn({ err: (err as Error).message }, 'storage budget: prune failed');
    }
    const st = this.status();
    if (st.warning !== undefined && (st.warning !== this.lastWarn || this.now() - this.lastWarnAt > 10 * MINUTE)) {
      this.d.logger.warn(
        { usedBytes: st.usedBytes, maxBytes: st.maxBytes, freeBytes: st.freeBytes, refuseInHours: st.refuseInHours },
        `storage budget: ${st.warning}`,
      );
      this.lastWarnAt = this.now();
    }
    this.lastWarn = st.warning ?? '';
    return n;
  }

  private prune(): number {
    const { log, maxBytes } = this.d;
    if (maxBytes <= 0) return 0;
    const used = this.d.usedBytes();
    if (used <= maxBytes) {
      this.state = 'within';
      delete this.blockedBy;
      return 0;
    }
    const heads = log.streamHeads();
    const held = heads.reduce((n, h) => n + (log.streamRange(h.author, h.stream)?.count ?? 0), 0);
    const need = Math.ceil((used - LOW_WATER * maxBytes) / (used / Math.max(1, held)));
    // Candidates: our own data blocks, oldest first per stream, up to what every sink exported and minCopies siblings hold.
    const cands: { stream: string; seq: number; lamport: number; time: number }[] = [];
    let blocked: BudgetStatus['blockedBy'] = 'nothing-own';
    for (const h of heads) {
      if (h.author !== log.author || h.stream.startsWith('$')) continue;
      const limit = Math.min(this.d.exportedThrough?.(h.author, h.stream) ?? Infinity, this.copiesLimit(h.stream));
      let taken = 0;
      for (const [seq, hash] of log.iterStream(h.author, h.stream, log.mark(h.author, h.stream))) {
        if (taken >= Math.min(need, MAX_PER_MARK) || seq >= h.seq) break; // the head stays: the next block's prev
        const rec = log.lookup(hash);
        if (rec === undefined || !PRUNABLE_KINDS.has(rec.kind) || rec.kind === 'retention') continue;
        if (seq > limit) {
          blocked =
            seq > (this.d.exportedThrough?.(h.author, h.stream) ?? Infinity)
              ? 'export'
              : blocked === 'export'
                ? blocked
                : 'copies';
          break;
        }
        cands.push({ stream: h.stream, seq, lamport: rec.lamport, time: rec.time ?? this.now() });
        taken++;
      }
    }
    cands.sort((a, b) => a.lamport - b.lamport);
    const lows = new Map<string, { low: number; time: number }>();
    for (const c of cands.slice(0, need)) lows.set(c.stream, { low: c.seq + 1, time: c.time });
    for (const [stream, { low, time }] of lows) {
      log.retain(stream, low, time);
      const gone = cands.filter((c) => c.stream === stream && c.seq < low).length;
      this.pruned += gone;
      this.d.logger.info(
        { stream, low, pruned: gone, usedBytes: used, maxBytes },
        `storage budget: ${used} bytes over ${maxBytes}; pruning ${gone} exported block(s) of ${stream} below seq ${low}`,
      );
    }
    if (lows.size > 0) {
      this.state = 'pruning';
      delete this.blockedBy;
    } else {
      this.state = 'blocked';
      this.blockedBy = blocked;
    }
    return cands.slice(0, need).length;
  }

  /** The seq of our own `stream` that at least minCopies siblings hold (Infinity without minCopies). */
  private copiesLimit(stream: string): number {
    const k = this.d.minCopies;
    if (k <= 0) return Number.POSITIVE_INFINITY;
    const held = (this.d.heldOwn?.(stream) ?? []).sort((a, b) => b - a);
    return held[k - 1] ?? -1;
  }

  private framesPerDay(): number {
    const now = this.now();
    const window = Math.min(60 * MINUTE, now - this.started);
    if (window < 10_000) return 0;
    let n = 0;
    const from = Math.floor((now - window) / MINUTE);
    for (const [m, c] of this.perMinute) if (m >= from) n += c;
    return (n / window) * DAY;
  }

  status(): BudgetStatus {
    const { log, maxBytes, minFreeBytes } = this.d;
    const used = this.d.usedBytes();
    const freeRaw = this.d.freeBytes();
    const free = Number.isFinite(freeRaw) ? freeRaw : null;
    const frames = log.frames.count();
    const framesPerDay = this.framesPerDay();
    const bytesPerDay = frames > 0 ? (used / frames) * framesPerDay : 0;
    const oldest = [...log.frames.query({ limit: 1 })][0]?.rxTime;
    const now = this.now();
    // Blocked is decided at the last prune; pages freed since (a prune's or a seal's deletions
    // landing) may have brought the store back within the budget, which is then what it is.
    const state = this.state === 'blocked' && maxBytes > 0 && used <= maxBytes ? 'within' : this.state;
    let warning: string | undefined;
    let refuseInHours: number | undefined;
    if (free !== null && minFreeBytes > 0) {
      const headroom = free - minFreeBytes;
      const hours = bytesPerDay > 0 ? (Math.max(0, headroom) / bytesPerDay) * 24 : Number.POSITIVE_INFINITY;
      if (maxBytes > 0 && maxBytes - used > headroom)
        warning = `the budget (${maxBytes} bytes) is more than the disk can take before the free-space floor (${Math.max(0, headroom)} bytes left above ingest.minFreeBytes): ingest will be refused before pruning starts; lower log.maxBytes`;
      else if (state === 'blocked')
        warning = `over the budget and nothing more can be pruned (${this.blockedBy === 'export' ? 'sinks have not exported the oldest blocks' : this.blockedBy === 'copies' ? `fewer than ${this.d.minCopies} siblings hold the oldest blocks` : 'the data is siblings\u2019 streams'})`;
      else if (maxBytes === 0 && hours < WARN_HOURS) warning = 'no storage budget (log.maxBytes: 0) and the disk fills';
      if (warning !== undefined && Number.isFinite(hours)) refuseInHours = Math.round(hours * 10) / 10;
    }
    return {
      maxBytes,
      usedBytes: used,
      freeBytes: free,
      minCopies: this.d.minCopies,
      state,
      ...(this.blockedBy && state === 'blocked' && { blockedBy: this.blockedBy }),
      blocksPruned: this.pruned,
      framesPerDay: Math.round(framesPerDay),
      bytesPerDay: Math.round(bytesPerDay),
      budgetDays: maxBytes > 0 && bytesPerDay > 0 ? round3(maxBytes / bytesPerDay) : null,
      historyDays: oldest === undefined ? null : round3((now - oldest) / DAY),
      ...(warning !== undefined && { warning }),
      ...(refuseInHours !== undefined && { refuseInHours }),
    };
  }
}
