/**
 * The 1-minute rollups packed one row per series and hour, so a month of one series is 720
 * reads of 1920 bytes, not 43 200 decoded entries (the aggregate query's cost was the per-entry
 * decode, bench/README.md):
 *
 *   rollup-minutes  [device, name, hour start ms] → 60 × [count, min, max, sum] float64 LE
 *
 * A minute with count 0 holds nothing. Rows are written inside the caller's transaction, one
 * read-modify-write per row per batch. Minute buckets written before this layout (rows
 * [device, name, 60, minute] of `rollups`) are still read and added in (the sums of two
 * disjoint sets of values add), and go with their retention: no data migration.
 */
import type { Database } from 'lmdb';
import type { Bucket } from './rollups.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const CELLS = 60;
const FIELDS = 4;
const ROW_BYTES = CELLS * FIELDS * 8;

type RowKey = [string, string, number];
export type CellFn = (t: number, count: number, min: number, max: number, sum: number) => void;

/** Reads the stored bytes in place (little-endian whatever the platform; no copy, so no garbage per row). */
function scanRow(r: { start: number; row: Buffer }, from: number, to: number, fn: CellFn): void {
  const row = r.row;
  for (let c = 0; c < CELLS; c++) {
    const o = c * FIELDS * 8;
    const count = row.readDoubleLE(o);
    if (count === 0) continue;
    const t = r.start + c * MINUTE;
    if (t >= from && t < to) fn(t, count, row.readDoubleLE(o + 8), row.readDoubleLE(o + 16), row.readDoubleLE(o + 24));
  }
}

function toBytes(row: Float64Array): Buffer {
  const b = Buffer.alloc(ROW_BYTES);
  for (let i = 0; i < row.length; i++) b.writeDoubleLE(row[i]!, i * 8);
  return b;
}

export class MinuteRows {
  constructor(private readonly db: Database<Buffer, RowKey>) {}

  /** Adds a batch's minute sums (minute start ms → sums) of one series into its rows. In a transaction. */
  addSync(device: string, name: string, minutes: ReadonlyMap<number, Bucket>): void {
    const byHour = new Map<number, [number, Bucket][]>();
    for (const [t, b] of minutes) {
      const h = Math.floor(t / HOUR) * HOUR;
      const list = byHour.get(h);
      if (list) list.push([t, b]);
      else byHour.set(h, [[t, b]]);
    }
    for (const [h, cells] of byHour) {
      const k: RowKey = [device, name, h];
      // A copy of the stored bytes with only the batch's cells rewritten: a batch at 1 Hz a
      // device touches one minute of a row, so no conversion of all 240 fields each way.
      const stored = this.db.getBinary(k);
      const row = stored?.length === ROW_BYTES ? stored : Buffer.alloc(ROW_BYTES);
      for (const [t, b] of cells) {
        const o = ((t - h) / MINUTE) * FIELDS * 8;
        const count = row.readDoubleLE(o);
        row.writeDoubleLE(count + b.count, o);
        row.writeDoubleLE(count === 0 ? b.min : Math.min(row.readDoubleLE(o + 8), b.min), o + 8);
        row.writeDoubleLE(count === 0 ? b.max : Math.max(row.readDoubleLE(o + 16), b.max), o + 16);
        row.writeDoubleLE(count === 0 ? b.sum : row.readDoubleLE(o + 24) + b.sum, o + 24);
      }
      this.db.putSync(k, row);
    }
  }

  /** Minute buckets of one series in [from, to), in time order. */
  *buckets(device: string, name: string, from: number, to: number): Generator<[number, Bucket]> {
    const out: [number, Bucket][] = [];
    for (const row of this.rows(device, name, from, to)) {
      out.length = 0;
      scanRow(row, from, to, (t, count, min, max, sum) => out.push([t, { count, min, max, sum }]));
      yield* out;
    }
  }

  /** The same minutes as `buckets`, to a callback (no object per minute: the aggregate query's loop). */
  scan(device: string, name: string, from: number, to: number, fn: CellFn): void {
    for (const row of this.rows(device, name, from, to)) scanRow(row, from, to, fn);
  }

  private *rows(device: string, name: string, from: number, to: number): Generator<{ start: number; row: Buffer }> {
    const start = Math.floor(from / HOUR) * HOUR;
    for (const { key, value } of this.db.getRange({ start: [device, name, start], end: [device, name, to] }))
      if (value.length === ROW_BYTES) yield { start: key[2], row: value }; // else not a row this code wrote
  }

  /** Drops the minutes of one series before `cutoff` (whole rows, and the older part of the row holding it). In a transaction. */
  pruneSync(device: string, name: string, cutoff: number): number {
    let n = 0;
    const edge = Math.floor(cutoff / HOUR) * HOUR;
    for (const k of this.db.getKeys({ start: [device, name, 0], end: [device, name, edge] })) {
      this.db.removeSync(k);
      n++;
    }
    const k: RowKey = [device, name, edge];
    const row = this.read(k);
    if (!row) return n;
    const keep = (cutoff - edge) / MINUTE;
    let changed = false;
    for (let c = 0; c < Math.ceil(keep); c++)
      if (row[c * FIELDS] !== 0) {
        row.fill(0, c * FIELDS, c * FIELDS + FIELDS);
        changed = true;
      }
    if (!changed) return n;
    if (row.every((v, i) => i % FIELDS !== 0 || v === 0)) this.db.removeSync(k);
    else this.db.putSync(k, toBytes(row));
    return n + 1;
  }

  private read(k: RowKey): Float64Array | undefined {
    const v = this.db.getBinary(k);
    if (!v || v.length !== ROW_BYTES) return undefined;
    const row = new Float64Array(CELLS * FIELDS);
    for (let i = 0; i < row.length; i++) row[i] = v.readDoubleLE(i * 8);
    return row;
  }
}

/** Two time-ordered bucket streams as one, buckets at the same time combined. */
export function* mergeBuckets(
  a: Iterable<[number, Bucket]>,
  b: readonly [number, Bucket][],
): Generator<[number, Bucket]> {
  let j = 0;
  for (const [t, x] of a) {
    while (j < b.length && b[j]![0] < t) yield b[j++]!;
    if (j < b.length && b[j]![0] === t) yield [t, combineBuckets(x, b[j++]![1])];
    else yield [t, x];
  }
  while (j < b.length) yield b[j++]!;
}

/** The sums of two disjoint sets of values. */
export function combineBuckets(a: Bucket, b: Bucket): Bucket {
  return { count: a.count + b.count, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), sum: a.sum + b.sum };
}
