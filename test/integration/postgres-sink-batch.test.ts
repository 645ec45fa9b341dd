/**
 * The PostgreSQL sink's two write paths against a real PostgreSQL (temp dir, unix socket):
 * binary COPY straight into the tables, and the upsert it falls back to when a batch meets rows
 * already stored. Text that COPY's text format would escape (tab, newline, CR, backslash, non-ASCII) and
 * bytes arrive verbatim; a resent batch and a batch half old, half new store each row once
 * and add each numeric record to its hour bucket once (minutes from `minute_rollups`). A
 * schema of the first migration (foreign key, minute rollups stored) is brought to the second.
 * Property: random frames in random batches (late, out of order, resent in part) leave
 * `rollups` equal to the hour buckets computed record by record.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { bucketOf } from '../../gateway/export/sinks/pg-rollups.js';
import { PostgresSink } from '../../gateway/export/sinks/postgres.js';
import type { ExportFrame } from '../../gateway/export/source.js';
import { type ReadingBody, type SenmlRecord, signBody } from '../../protocols/index.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { skipUnless } from '../helpers/system-tools.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const TRICKY = 'a\tb\nc\rd\\e \u00e9\u6f22 \\N';

function frame(device: string, seq: number, records: SenmlRecord[]): ExportFrame {
  const body: ReadingBody = { type: 'reading', boot: 1, seq, time: T0 / 1000 + seq, records };
  return {
    device,
    boot: 1,
    seq,
    rxTime: T0 + seq * 1000,
    transport: 'mqtt',
    frame: signBody(body, device, () => new Uint8Array(64)),
    author: 'ab'.repeat(32),
    policy: 'default@1',
    block: 'cd'.repeat(32),
    index: seq,
  };
}

/** seq s of device d: a number (s, in the minute s / 60), a string, bytes, a boolean. */
const frames = (d: string, from: number, to: number): ExportFrame[] =>
  Array.from({ length: to - from }, (_, i) => {
    const s = from + i;
    return frame(d, s, [
      { bn: `${d}:`, bt: T0 / 1000 + s, n: 'temp', u: 'Cel', v: s, s: s * 2 },
      { n: 'note', vs: `${TRICKY}${s}` },
      { n: 'blob', vd: new Uint8Array([0, 9, 10, 13, 92, s & 255]) },
      { n: 'door', vb: s % 2 === 0 },
    ]);
  });

describe.skipIf(skipUnless('postgres'))('PostgreSQL sink batches', () => {
  let pg: PostgresServer | undefined;
  afterAll(async () => {
    await pg?.remove();
  });

  it('stores rows verbatim and once through COPY and the upsert fallback, rollups counted once', async () => {
    pg = await startPostgres();
    const sink = new PostgresSink({ name: 'wh', url: pg.url, schema: 'outpost' }, (a) => `gw-${a.slice(0, 4)}`);
    const c = await pg.client();
    try {
      await sink.deliver(frames('dev-a', 0, 100)); // COPY
      await sink.deliver(frames('dev-a', 0, 100)); // all there: upsert adds nothing
      await sink.deliver(frames('dev-a', 50, 150)); // half there: upsert adds the new half
      await sink.deliver(frames('dev-b', 0, 120)); // upsert (still within the batches after a conflict)
      const counts = await c.query<{ f: string; r: string }>(
        'SELECT (SELECT count(*) FROM outpost.frames) AS f, (SELECT count(*) FROM outpost.records) AS r',
      );
      expect(counts.rows[0]).toEqual({ f: '270', r: String(270 * 4) });

      const note = await c.query<{ string_value: string }>(
        `SELECT string_value FROM outpost.records WHERE device = 'dev-a' AND seq = 7 AND name = 'dev-a:note'`,
      );
      expect(note.rows[0]!.string_value).toBe(`${TRICKY}7`);
      const blob = await c.query<{ data_value: Buffer }>(
        `SELECT data_value FROM outpost.records WHERE device = 'dev-a' AND seq = 130 AND name = 'dev-a:blob'`,
      );
      expect([...blob.rows[0]!.data_value]).toEqual([0, 9, 10, 13, 92, 130]);
      const row = await c.query<{ frame: Buffer; heard_by: string; bool_value: boolean; sum: number }>(
        `SELECT f.frame, f.heard_by, r.bool_value, t.sum FROM outpost.frames f
         JOIN outpost.records r ON r.device = f.device AND r.seq = f.seq AND r.name = 'dev-b:door'
         JOIN outpost.records t ON t.device = f.device AND t.seq = f.seq AND t.name = 'dev-b:temp'
         WHERE f.device = 'dev-b' AND f.seq = 3`,
      );
      expect(Buffer.compare(row.rows[0]!.frame, Buffer.from(frames('dev-b', 3, 4)[0]!.frame))).toBe(0);
      expect(row.rows[0]).toMatchObject({ heard_by: 'gw-abab', bool_value: false, sum: 6 });

      // Each numeric record once in its minute and its hour; the minute buckets hold seqs 60k..60k+59.
      const minutes = await c.query<{
        device: string;
        count: string;
        min: number;
        max: number;
        sum: number;
        mean: number;
      }>(
        `SELECT d.device, m.count, m.min, m.max, m.sum, m.mean
         FROM unnest(ARRAY['dev-a', 'dev-b']) AS d(device),
              outpost.minute_rollups(d.device, d.device || ':temp', to_timestamp($1::float8 / 1000), 'infinity') m
         ORDER BY d.device, m.bucket`,
        [T0],
      );
      const want = (d: string, n: number) =>
        Array.from({ length: Math.ceil(n / 60) }, (_, m) => {
          const lo = m * 60;
          const hi = Math.min(n, lo + 60) - 1;
          const count = hi - lo + 1;
          const sum = ((lo + hi) * count) / 2;
          return { device: d, count: String(count), min: lo, max: hi, sum, mean: sum / count };
        });
      expect(minutes.rows).toEqual([...want('dev-a', 150), ...want('dev-b', 120)]);
      const hours = await c.query<{ n: string }>(
        'SELECT sum(count) AS n FROM outpost.rollups WHERE step_seconds = 3600',
      );
      expect(hours.rows[0]!.n).toBe('270');

      // Rows keep going in once the upserted batches run out and COPY is tried again.
      for (let i = 0; i < 16; i++) await sink.deliver(frames('dev-c', i * 10, i * 10 + 10));
      await sink.deliver(frames('dev-c', 160, 170));
      const c3 = await c.query<{ n: string }>(`SELECT count(*) AS n FROM outpost.frames WHERE device = 'dev-c'`);
      expect(c3.rows[0]!.n).toBe('170');
    } finally {
      await c.end();
      await sink.close();
    }
  }, 60_000);

  it('brings a schema of the first migration to the second: no foreign key, no stored minutes', async () => {
    pg ??= await startPostgres();
    const c = await pg.client();
    const open = () => new PostgresSink({ name: 'up', url: pg!.url, schema: 'up' }, () => 'gw');
    const first = open();
    try {
      await first.deliver(frames('dev-u', 0, 10));
      // Back to the first migration's shape: the foreign key, minute rows, version 1.
      await c.query(`ALTER TABLE up.records ADD CONSTRAINT records_device_boot_seq_fkey
                     FOREIGN KEY (device, boot, seq) REFERENCES up.frames (device, boot, seq)`);
      await c.query(
        `INSERT INTO up.rollups SELECT device, name, 60, bucket, count, min, mean, max, sum FROM up.rollups`,
      );
      await c.query('DROP FUNCTION up.minute_rollups');
      await c.query('DELETE FROM up.schema_version WHERE version = 2');
    } finally {
      await first.close();
    }
    const second = open();
    try {
      await second.deliver(frames('dev-u', 10, 20));
      const fk = await c.query(`SELECT 1 FROM pg_constraint WHERE conname = 'records_device_boot_seq_fkey'`);
      expect(fk.rowCount).toBe(0);
      const steps = await c.query<{ step_seconds: number; n: string }>(
        'SELECT step_seconds, sum(count) AS n FROM up.rollups GROUP BY 1',
      );
      expect(steps.rows).toEqual([{ step_seconds: 3600, n: '20' }]);
      const m = await c.query<{ n: string }>(
        `SELECT sum(count) AS n FROM up.minute_rollups('dev-u', 'dev-u:temp', '-infinity', 'infinity')`,
      );
      expect(m.rows[0]!.n).toBe('20');
    } finally {
      await c.end();
      await second.close();
    }
  }, 60_000);

  it('[property] batches late, out of order and resent fold into the hour buckets record by record', async () => {
    pg ??= await startPostgres();
    const c = await pg.client();
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          // (device, seq, minutes after T0, value) per frame; the seq makes the key, the minute the bucket.
          fc.uniqueArray(
            fc.tuple(
              fc.constantFrom('p-a', 'p-b'),
              fc.nat({ max: 40 }),
              fc.nat({ max: 300 }),
              fc.integer({ min: -50, max: 50 }),
            ),
            { selector: (t) => `${t[0]}/${t[1]}`, minLength: 1, maxLength: 60 },
          ),
          fc.array(fc.tuple(fc.nat({ max: 60 }), fc.nat({ max: 20 })), { minLength: 1, maxLength: 8 }),
          async (specs, cuts) => {
            const schema = `prop${run++}`;
            const sink = new PostgresSink({ name: schema, url: pg!.url, schema }, () => 'gw');
            const all = specs.map(([d, seq, minute, v]) => {
              const f = frame(d, seq, [{ bn: `${d}:`, bt: (T0 + minute * 60_000) / 1000, n: 'temp', v }]);
              return { f, d, time: T0 + minute * 60_000, v };
            });
            try {
              // Each cut is a batch [from, from + len): overlapping batches resend frames, in any order.
              for (const [from, len] of cuts) {
                const batch = all.slice(from % all.length, (from % all.length) + len + 1).map((x) => x.f);
                await sink.deliver(batch);
              }
              await sink.deliver(all.map((x) => x.f)); // everything at last: the rest arrives late
              const want = new Map<string, { count: number; min: number; max: number; sum: number }>();
              for (const x of all) {
                const k = `${x.d}|${bucketOf(x.time, 3600)}`;
                const b = want.get(k);
                if (b)
                  Object.assign(b, {
                    count: b.count + 1,
                    min: Math.min(b.min, x.v),
                    max: Math.max(b.max, x.v),
                    sum: b.sum + x.v,
                  });
                else want.set(k, { count: 1, min: x.v, max: x.v, sum: x.v });
              }
              const got = await c.query<{ k: string; count: string; min: number; max: number; sum: number }>(
                `SELECT device || '|' || (extract(epoch FROM bucket) * 1000)::bigint AS k, count, min, max, sum
                 FROM ${schema}.rollups WHERE step_seconds = 3600`,
              );
              expect(
                new Map(got.rows.map((r) => [r.k, { count: Number(r.count), min: r.min, max: r.max, sum: r.sum }])),
              ).toEqual(want);
            } finally {
              await sink.close();
            }
          },
        ),
        { numRuns: 12 },
      );
    } finally {
      await c.end();
    }
  }, 120_000);
});
