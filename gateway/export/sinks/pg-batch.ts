/**
 * The two ways the PostgreSQL sink writes a batch (postgres.ts picks one):
 *
 * - `copyBatch`, the fast path: in one transaction, binary `COPY … FROM STDIN` straight into
 *   `frames` and `records`, then the batch's own per-bucket sums folded into `rollups`
 *   (ON CONFLICT DO UPDATE adds them). A row already there (a resend after a crash, a sibling
 *   gateway exporting the same frame) makes COPY fail with a unique violation and the whole
 *   transaction rolls back: nothing is counted twice. COPY has no ON CONFLICT; that is why it
 *   is fast (batched heap and index inserts, no speculative insertion). The rows are written
 *   into COPY's format straight from each frame's decoded records (`encodeBatch`), the rollups
 *   summed per bucket in the gateway, sent as a third COPY into a temporary table and
 *   merged by one upsert (pg-rollups.ts), all in one Query message with the rows right
 *   behind it, COMMIT queued after it (pg-queue.ts).
 * - `upsertBatch`, the path that tolerates rows already there: one statement of INSERTs from
 *   unnest($arrays) ON CONFLICT DO NOTHING chained as data-modifying CTEs, the rollups
 *   folded from only the records rows that insert added (its RETURNING). Its rows are built as
 *   arrays of values (`batchRows`).
 *
 * Either way a batch counts as delivered once its transaction committed.
 */
import type pg from 'pg';
import { frameRecords, recordTime, resolvedRecords } from '../records.js';
import type { ExportFrame } from '../source.js';
import { CopyIn, type CopyType, type CopyValue, CopyWriter } from './pg-copy.js';
import { Queued } from './pg-queue.js';
import {
  type BucketSum,
  BucketSums,
  CREATE_DELTA,
  DELTA_COLUMNS,
  DELTA_TABLE,
  deltaRows,
  FOLD,
  foldFromDelta,
  ROLLUP_STEPS,
} from './pg-rollups.js';
import type { GatewayName } from './types.js';

const FRAME_COLUMNS = 'device, boot, seq, rx_time, transport, heard_by, policy, block, frame';
export const FRAME_TYPES: CopyType[] = ['text', 'int8', 'int8', 'timestamptz', 'text', 'text', 'text', 'text', 'bytea'];
const RECORD_COLUMNS =
  'device, boot, seq, idx, name, time, value, string_value, bool_value, data_value, sum, unit, heard_by, policy';
export const RECORD_TYPES: CopyType[] = [
  'text',
  'int8',
  'int8',
  'int4',
  'text',
  'timestamptz',
  'float8',
  'text',
  'bool',
  'bytea',
  'float8',
  'text',
  'text',
  'text',
];

/** A batch as table rows, decoded once for either path. */
export interface BatchRows {
  readonly frames: CopyValue[][];
  readonly records: CopyValue[][];
}

export function batchRows(frames: readonly ExportFrame[], gatewayName: GatewayName): BatchRows {
  const out: BatchRows = { frames: [], records: [] };
  for (const fr of frames) {
    const heardBy = gatewayName(fr.author);
    const rx = new Date(fr.rxTime);
    out.frames.push([fr.device, fr.boot, fr.seq, rx, fr.transport, heardBy, fr.policy, fr.block, fr.frame]);
    for (const rec of frameRecords(fr)) {
      out.records.push([
        fr.device,
        fr.boot,
        fr.seq,
        rec.index,
        rec.name,
        new Date(rec.time),
        rec.value ?? null,
        rec.stringValue ?? null,
        rec.boolValue ?? null,
        rec.dataValue ?? null,
        rec.sum ?? null,
        rec.unit ?? null,
        heardBy,
        fr.policy,
      ]);
    }
  }
  return out;
}

/** A batch encoded for COPY: the two tables' binary COPY streams and the per-bucket sums of its numeric records. */
export interface EncodedBatch {
  readonly frames: Buffer[];
  /** undefined: no records. */
  readonly records: Buffer[] | undefined;
  readonly sums: BucketSum[];
}

/**
 * The batch written straight into COPY's binary format from each frame's decoded body (the
 * rows `batchRows` makes, without an array, a Date or a record object per row).
 */
export function encodeBatch(frames: readonly ExportFrame[], gatewayName: GatewayName): EncodedBatch {
  const fw = new CopyWriter();
  const rw = new CopyWriter();
  const sums = new BucketSums();
  let records = 0;
  for (const fr of frames) {
    const heardBy = gatewayName(fr.author);
    fw.row(FRAME_TYPES.length);
    fw.text(fr.device);
    fw.int8(fr.boot);
    fw.int8(fr.seq);
    fw.time(fr.rxTime);
    fw.text(fr.transport);
    fw.text(heardBy);
    fw.text(fr.policy);
    fw.text(fr.block);
    fw.bytea(fr.frame);
    // A loop rather than forEachRecord's callback: no closure per frame.
    const rs = resolvedRecords(fr);
    if (!rs) continue;
    records += rs.length;
    for (let index = 0; index < rs.length; index++) {
      const r = rs[index]!;
      const time = recordTime(fr.rxTime, r);
      rw.row(RECORD_TYPES.length);
      rw.text(fr.device);
      rw.int8(fr.boot);
      rw.int8(fr.seq);
      rw.int4(index);
      rw.text(r.name);
      rw.time(time);
      if (r.value === undefined) rw.null();
      else {
        rw.float8(r.value);
        sums.add(fr.device, r.name, time, r.value);
      }
      if (r.stringValue === undefined) rw.null();
      else rw.text(r.stringValue);
      if (r.boolValue === undefined) rw.null();
      else rw.bool(r.boolValue);
      if (r.dataValue === undefined) rw.null();
      else rw.bytea(r.dataValue);
      if (r.sum === undefined) rw.null();
      else rw.float8(r.sum);
      if (r.unit === undefined) rw.null();
      else rw.text(r.unit);
      rw.text(heardBy);
      rw.text(fr.policy);
    }
  }
  return { frames: fw.finish(), records: records > 0 ? rw.finish() : undefined, sums: sums.sorted() };
}

/** Whether an error is PostgreSQL's unique_violation (a key already stored). */
export const isUniqueViolation = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === '23505';

/**
 * COPY into the tables, in one transaction whose statements are all queued at once
 * (pg-queue.ts): this returns before the server has them, so the caller can read the next
 * batch meanwhile. Rejects with a unique violation (rolled back) when any row is already there.
 */
export function copyBatch(c: pg.PoolClient, s: string, b: EncodedBatch): Promise<void> {
  const q = new Queued();
  // BEGIN, both COPYs and the rollups fold in one Query message, the rows right behind it
  // (pg-copy.ts CopyIn): the server writes the batch while the gateway reads and encodes the
  // next. On a unique violation the server skips the rest of the message; `end` rolls back.
  const text = ['BEGIN', `COPY ${s}.frames (${FRAME_COLUMNS}) FROM STDIN WITH (FORMAT binary)`];
  const streams = [b.frames];
  if (b.records) {
    text.push(`COPY ${s}.records (${RECORD_COLUMNS}) FROM STDIN WITH (FORMAT binary)`);
    streams.push(b.records);
  }
  if (b.sums.length > 0) {
    text.push(CREATE_DELTA, `COPY ${DELTA_TABLE} (${DELTA_COLUMNS}) FROM STDIN WITH (FORMAT binary)`);
    text.push(foldFromDelta(s));
    streams.push(deltaRows(b.sums));
  }
  const ci = new CopyIn(text.join('; '), streams, q.step());
  ci.result().catch(() => {}); // its outcome is the step's: `q.end` rejects with the first error
  void c.query(ci as unknown as pg.QueryConfig);
  return q.end(c);
}

/** Column arrays of rows, for unnest(). */
const columns = (rows: readonly CopyValue[][], n: number): unknown[][] =>
  Array.from({ length: n }, (_, i) => rows.map((r) => r[i]));

/**
 * One statement (atomic by itself, one round trip): frames, then their records, then the
 * records rows that insert added folded into their buckets.
 */
export async function upsertBatch(c: pg.PoolClient, s: string, rows: BatchRows): Promise<void> {
  await c.query(
    `WITH f AS (
       INSERT INTO ${s}.frames (${FRAME_COLUMNS})
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[],
                            $7::text[], $8::text[], $9::bytea[])
       ON CONFLICT DO NOTHING),
     added AS (
       INSERT INTO ${s}.records (${RECORD_COLUMNS})
       SELECT * FROM unnest($10::text[], $11::bigint[], $12::bigint[], $13::integer[], $14::text[],
                            $15::timestamptz[], $16::float8[], $17::text[], $18::boolean[], $19::bytea[],
                            $20::float8[], $21::text[], $22::text[], $23::text[])
       ON CONFLICT DO NOTHING
       RETURNING device, name, time, value)
     INSERT INTO ${s}.rollups AS o (device, name, step_seconds, bucket, count, min, mean, max, sum)
     SELECT a.device, a.name, st.step, to_timestamp(floor(extract(epoch FROM a.time) / st.step) * st.step),
            count(*), min(a.value), avg(a.value), max(a.value), sum(a.value)
     FROM added a CROSS JOIN unnest($24::integer[]) AS st(step)
     WHERE a.value IS NOT NULL
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
     ${FOLD}`,
    [...columns(rows.frames, 9), ...columns(rows.records, 14), ROLLUP_STEPS],
  );
}
