/**
 * Local rollups: per series (device, SenML name) and step (1 minute, 1 hour), the count,
 * min, max and sum of the numeric values whose record time falls in each bucket, kept in
 * lmdb with their own retention. They are fed like a sink, from the log through the same
 * exporter (its own cursor), and each batch's bucket updates and the cursor commit in one
 * lmdb transaction: a frame counts once, however late or out of order it arrives (its
 * record time picks the bucket, not its arrival). A batch is summed in memory first, so each
 * bucket (each packed minute row) is read and written once per batch.
 *
 *   rollups         [device, name, 3600, bucket ms] → {count, min, max, sum}  (1-hour; and
 *                   1-minute buckets [device, name, 60, bucket] written before rollup-minutes)
 *   rollup-minutes  [device, name, hour ms] → 60 packed minutes (rollup-minutes.ts)
 *   rollup-series   [device, name] → 1
 */
import type { Database } from 'lmdb';
import { type Store, untracked } from '../store/store.js';
import type { ExportTarget } from './exporter.js';
import { combineBuckets, MinuteRows, mergeBuckets } from './rollup-minutes.js';
import { forEachRecord } from './records.js';
import type { ExportFrame } from './source.js';

export const ROLLUP_STEPS_S = [60, 3600] as const;
export type RollupStep = (typeof ROLLUP_STEPS_S)[number];

export interface Bucket {
  count: number;
  min: number;
  max: number;
  sum: number;
}

export interface SeriesPoint {
  /** Bucket start, ms. */
  readonly t: number;
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly max: number;
}

type Key = [string, string, number, number];

const ROLLUP_TARGET = '$rollups';

export class RollupStore implements ExportTarget {
  readonly name = ROLLUP_TARGET;
  private readonly db: Database<Bucket, Key>;
  private readonly series: Database<number, [string, string]>;
  private readonly minutes: MinuteRows;
  /** Series found committed in `rollup-series` (never removed), so a batch does not look each one up again. */
  private readonly knownSeries = new Set<string>();

  constructor(
    private readonly store: Store,
    /** Retention per step, ms. */
    private readonly retainMs: Record<RollupStep, number>,
    private readonly now: () => number = Date.now,
  ) {
    this.db = store.root.openDB({ name: 'rollups' });
    this.series = store.root.openDB({ name: 'rollup-series' });
    this.minutes = new MinuteRows(store.root.openDB({ name: 'rollup-minutes', encoding: 'binary' }));
  }

  deliver(frames: readonly ExportFrame[]): Promise<void> {
    return this.deliverWithCursor(frames, () => {});
  }

  async deliverWithCursor(frames: readonly ExportFrame[], writeCursor: () => void): Promise<void> {
    const now = this.now();
    // Per series, per step: the batch's sums by bucket (decoded outside the transaction). The
    // records are read as resolved, without an object per record or per value added.
    const sums = new Map<string, { device: string; name: string; steps: Map<number, Sum>[] }>();
    for (const f of frames)
      forEachRecord(f, (_index, r, time) => {
        const v = r.value;
        if (v === undefined || !Number.isFinite(v)) return;
        const id = `${f.device}\u0000${r.name}`;
        let s = sums.get(id);
        if (!s) sums.set(id, (s = { device: f.device, name: r.name, steps: ROLLUP_STEPS_S.map(() => new Map()) }));
        for (let i = 0; i < ROLLUP_STEPS_S.length; i++) {
          const step = ROLLUP_STEPS_S[i]!;
          const bucket = Math.floor(time / (step * 1000)) * step * 1000;
          if (bucket + step * 1000 <= now - this.retainMs[step]) continue; // already past its retention
          addValue(s.steps[i]!, bucket, v);
        }
      });
    await untracked(
      this.store.root.transaction(() => {
        for (const [id, { device, name, steps }] of sums) {
          if (!this.knownSeries.has(id)) {
            // Remembered once committed (a failed transaction must not leave it remembered).
            if (this.series.doesExist([device, name])) this.knownSeries.add(id);
            else this.series.putSync([device, name], 1);
          }
          this.minutes.addSync(device, name, steps[0]!);
          for (const [bucket, b] of steps[1]!) {
            const k: Key = [device, name, 3600, bucket];
            const old = this.db.get(k);
            this.db.putSync(k, old ? combineBuckets(old, b) : b);
          }
        }
        writeCursor();
      }),
    );
  }

  /** Raw buckets of one series and step in [from, to), in time order. */
  *buckets(device: string, name: string, step: RollupStep, from: number, to: number): Generator<[number, Bucket]> {
    const stored = (): Generator<[number, Bucket]> =>
      (function* (db) {
        for (const { key, value } of db.getRange({ start: [device, name, step, from], end: [device, name, step, to] }))
          yield [key[3], value] as [number, Bucket];
      })(this.db);
    if (step === 3600) return yield* stored();
    // Minutes: the packed rows, plus any written before them (usually none: one seek).
    yield* mergeBuckets(this.minutes.buckets(device, name, from, to), [...stored()]);
  }

  /**
   * Points of one series over [from, to) every `stepMs` (a multiple of a minute), merged from
   * the hour buckets when the step is whole hours and they cover `from`, else from the minute
   * buckets (`base` forces one).
   */
  query(device: string, name: string, from: number, to: number, stepMs: number, base?: RollupStep): SeriesPoint[] {
    const b: RollupStep = base ?? (stepMs % 3_600_000 === 0 && from >= this.now() - this.retainMs[3600] ? 3600 : 60);
    const out: SeriesPoint[] = [];
    let cur: (Bucket & { t: number }) | undefined;
    const flush = (): void => {
      if (cur) out.push({ t: cur.t, count: cur.count, min: cur.min, mean: cur.sum / cur.count, max: cur.max });
    };
    const fold = (t: number, count: number, min: number, max: number, sum: number): void => {
      const pt = Math.floor(t / stepMs) * stepMs;
      if (cur?.t !== pt) {
        flush();
        cur = { t: pt, count, min, max, sum };
      } else {
        cur.count += count;
        cur.min = Math.min(cur.min, min);
        cur.max = Math.max(cur.max, max);
        cur.sum += sum;
      }
    };
    const start = Math.floor(from / stepMs) * stepMs;
    // Minute entries of the layout before in range (usually none): the merging path; else the packed rows alone.
    let legacy = false;
    if (b === 60)
      for (const _ of this.db.getKeys({ start: [device, name, 60, start], end: [device, name, 60, to], limit: 1 }))
        legacy = true;
    if (b === 60 && !legacy) this.minutes.scan(device, name, start, to, fold);
    else for (const [t, v] of this.buckets(device, name, b, start, to)) fold(t, v.count, v.min, v.max, v.sum);
    flush();
    return out;
  }

  /** Series held, as [device, name]. */
  *seriesList(): Generator<[string, string]> {
    yield* this.series.getKeys();
  }

  /** Drops buckets past their step's retention; returns how many. */
  async prune(now = this.now()): Promise<number> {
    let n = 0;
    await untracked(
      this.store.root.transaction(() => {
        for (const [device, name] of this.series.getKeys())
          for (const step of ROLLUP_STEPS_S) {
            const cutoff = now - this.retainMs[step] - step * 1000;
            if (step === 60) n += this.minutes.pruneSync(device, name, cutoff);
            for (const k of this.db.getKeys({ start: [device, name, step, 0], end: [device, name, step, cutoff] })) {
              this.db.removeSync(k);
              n++;
            }
          }
      }),
    );
    return n;
  }
}

/** A bucket the batch is still summing (its own object: added to in place). */
type Sum = { count: number; min: number; max: number; sum: number };

function addValue(m: Map<number, Sum>, t: number, v: number): void {
  const b = m.get(t);
  if (!b) m.set(t, { count: 1, min: v, max: v, sum: v });
  else {
    b.count++;
    b.min = Math.min(b.min, v); // as combineBuckets does (-0 and 0 alike)
    b.max = Math.max(b.max, v);
    b.sum += v;
  }
}
