/**
 * The PostgreSQL sink's rollups: 1-hour count/min/max/sum per (device, SenML name), kept by
 * adding each batch's new records into their buckets. A batch is summed per bucket in the
 * gateway first (one row per series and hour, not per record), then merged by one set-based
 * upsert: counts and sums add, min/max take the lesser/greater, the mean follows from the
 * new totals. Adding is order-free, so late and out-of-order frames land in their buckets.
 *
 * Only hours are kept here: the bench's data (one reading a minute per device) gave about one
 * minute bucket per record, so minute rollups cost as much as the records themselves (half
 * the backend's time for a batch) for a figure `minute_rollups(…)` (pg-schema.ts) computes
 * from the records' (device, name, time) index on demand.
 */
import { CopyWriter } from './pg-copy.js';

/** The rollup steps written, seconds. */
export const ROLLUP_STEPS = [3600] as const;

/** One bucket's delta: [device, name, step, bucket start ms, count, min, max, sum]. */
export type BucketSum = [string, string, number, number, number, number, number, number];

/** A numeric record as the sums need it. */
export interface RollupInput {
  readonly device: string;
  readonly name: string;
  /** ms since the epoch. */
  readonly time: number;
  readonly value: number;
}

/** Start of the `step`-second bucket holding `time` (ms), ms. */
export const bucketOf = (time: number, step: number): number => Math.floor(time / (step * 1000)) * step * 1000;

/**
 * Per-bucket sums of records, sorted by key (so two gateways folding into the same buckets
 * take their row locks in one order and cannot deadlock).
 */
export function bucketSums(records: Iterable<RollupInput>, steps: readonly number[] = ROLLUP_STEPS): BucketSum[] {
  const b = new BucketSums(steps);
  for (const r of records) b.add(r.device, r.name, r.time, r.value);
  return b.sorted();
}

/** Per-bucket sums built one record at a time (no object or string per record), for a writer that has the fields. */
export class BucketSums {
  /** Per step, device, then name: the buckets by start (ms). */
  private readonly buckets: Map<string, Map<string, Map<number, BucketSum>>>[];

  constructor(private readonly steps: readonly number[] = ROLLUP_STEPS) {
    this.buckets = steps.map(() => new Map());
  }

  add(device: string, name: string, time: number, value: number): void {
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i]!;
      const bucket = bucketOf(time, step);
      let byName = this.buckets[i]!.get(device);
      if (!byName) this.buckets[i]!.set(device, (byName = new Map()));
      let byBucket = byName.get(name);
      if (!byBucket) byName.set(name, (byBucket = new Map()));
      const b = byBucket.get(bucket);
      if (b) {
        b[4]++;
        b[5] = Math.min(b[5], value);
        b[6] = Math.max(b[6], value);
        b[7] += value;
      } else byBucket.set(bucket, [device, name, step, bucket, 1, value, value, value]);
    }
  }

  /** The sums, sorted by key (device, name, step, bucket start, as one string: `sumKey`). */
  sorted(): BucketSum[] {
    const all: [string, BucketSum][] = [];
    for (const byDevice of this.buckets)
      for (const byName of byDevice.values())
        for (const byBucket of byName.values()) for (const b of byBucket.values()) all.push([sumKey(b), b]);
    return all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
  }
}

/** A bucket's key, in the order its rows are locked: device, name, step, start. */
const sumKey = (b: BucketSum): string => `${b[0]}\u0000${b[1]}\u0000${b[2]}\u0000${b[3]}`;

/** Two deltas of one bucket as one (what the upsert's ON CONFLICT does to a stored row). */
export function mergeSums(a: BucketSum, b: BucketSum): BucketSum {
  return [a[0], a[1], a[2], a[3], a[4] + b[4], Math.min(a[5], b[5]), Math.max(a[6], b[6]), a[7] + b[7]];
}

/** Adds a bucket delta to the stored one (min/max ignore a NULL side; mean from the new totals). */
export const FOLD = `ON CONFLICT (device, name, step_seconds, bucket) DO UPDATE SET
         count = o.count + EXCLUDED.count,
         min = least(o.min, EXCLUDED.min),
         max = greatest(o.max, EXCLUDED.max),
         sum = o.sum + EXCLUDED.sum,
         mean = (o.sum + EXCLUDED.sum) / (o.count + EXCLUDED.count)`;

/**
 * The batch's bucket deltas as COPY rows of `DELTA_TABLE`, folded in by `foldFromDelta`: sent
 * in the same Query message as the batch's COPYs (pg-batch.ts), so the server folds them
 * without waiting for the gateway. Temporary (one per connection), emptied at each commit.
 */
export const DELTA_TABLE = 'outpost_rollup_delta';
export const CREATE_DELTA = `CREATE TEMP TABLE IF NOT EXISTS ${DELTA_TABLE} (device text, name text,
  step_seconds integer, bucket timestamptz, count bigint, min float8, max float8, sum float8) ON COMMIT DELETE ROWS`;
export const DELTA_COLUMNS = 'device, name, step_seconds, bucket, count, min, max, sum';

/** The deltas in COPY's binary format, in `DELTA_COLUMNS` order. */
export function deltaRows(sums: readonly BucketSum[]): Buffer[] {
  const w = new CopyWriter();
  for (const b of sums) {
    w.row(8);
    w.text(b[0]);
    w.text(b[1]);
    w.int4(b[2]);
    w.time(b[3]);
    w.int8(b[4]);
    w.float8(b[5]);
    w.float8(b[6]);
    w.float8(b[7]);
  }
  return w.finish();
}

/** Folds the deltas COPY put in `DELTA_TABLE` into `rollups`, in key order (row locks taken in one order). */
export const foldFromDelta = (s: string): string =>
  `INSERT INTO ${s}.rollups AS o (device, name, step_seconds, bucket, count, min, max, sum, mean)
     SELECT device, name, step_seconds, bucket, count, min, max, sum, sum / count FROM ${DELTA_TABLE}
     ORDER BY device, name, step_seconds, bucket
     ${FOLD}`;
