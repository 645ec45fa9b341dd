/**
 * The PostgreSQL sink's two write paths against a real PostgreSQL (temp dir, unix socket):
 * COPY straight into the tables, and the upsert it falls back to when a batch meets rows
 * already stored. Text that COPY must escape (tab, newline, CR, backslash, non-ASCII) and
 * bytes arrive verbatim; a resent batch and a batch half old, half new store each row once
 * and add each numeric record to its buckets once.
 */
import { afterAll, describe, expect, it } from 'vitest';
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
        `SELECT device, count, min, max, sum, mean FROM outpost.rollups WHERE step_seconds = 60 ORDER BY device, bucket`,
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
});
