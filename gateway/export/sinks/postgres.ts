/**
 * PostgreSQL sink (the `pg` client: pure JavaScript, no native build on a Pi, unix sockets and
 * TLS, one connection reused; `postgres` would do as well, `pg` is what most deployments
 * already run and audit). Each batch is one transaction of three statements, each a single
 * INSERT … SELECT FROM unnest($arrays) (one round trip per table whatever the batch size):
 *
 *   frames   ON CONFLICT DO NOTHING   keyed by (device, boot, seq)
 *   records  ON CONFLICT DO NOTHING   keyed by (device, boot, seq, record index)
 *   rollups  ON CONFLICT DO UPDATE    each (device, name, step, bucket) the batch touched,
 *                                     recomputed from the records rows it holds
 *
 * so a resend never duplicates and a late frame corrects its buckets. The batch counts as
 * delivered when COMMIT returns.
 */
import type pg from 'pg';
import type { PostgresSinkConfig } from '../config.js';
import { frameRecords } from '../records.js';
import type { ExportFrame } from '../source.js';
import { migrate } from './pg-schema.js';
import { readSecret, tlsOptions } from '../../outbound.js';
import type { DataSink, GatewayName } from './types.js';

const ROLLUP_STEPS = [60, 3600] as const;

export class PostgresSink implements DataSink {
  readonly name: string;
  private readonly poolConfig: pg.PoolConfig;
  /** Created with the first batch: `pg` is loaded only by a gateway that has this sink. */
  private pool?: Promise<pg.Pool>;
  private readonly schema: string;
  private ready?: Promise<void>;
  /** Clients that already carry the checked-out error listener (the pool reuses them). */
  private readonly guarded = new WeakSet<pg.PoolClient>();
  /** Whether the records table is a TimescaleDB hypertable (known after the first connection). */
  timescale = false;

  constructor(
    cfg: Pick<PostgresSinkConfig, 'name' | 'url' | 'passwordFile' | 'tls' | 'schema'>,
    private readonly gatewayName: GatewayName,
  ) {
    this.name = cfg.name;
    this.schema = cfg.schema;
    const password = readSecret(cfg.passwordFile);
    this.poolConfig = {
      connectionString: cfg.url,
      ...(password !== undefined && { password }),
      ...(cfg.tls && { ssl: tlsOptions(cfg.tls) }),
      max: 1,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    };
  }

  private async client(): Promise<pg.PoolClient> {
    this.pool ??= import('pg').then(({ default: pg }) => {
      const pool = new pg.Pool(this.poolConfig);
      // A dropped idle connection is reported here; the next batch reconnects.
      pool.on('error', () => {});
      return pool;
    });
    const c = await (await this.pool).connect();
    // The pool listens for errors only on idle clients. A server that goes away between two
    // statements of a batch (shutdown, pg_terminate_backend) makes a checked-out client emit
    // 'error' with no listener, which would kill the gateway; the next statement fails instead.
    if (!this.guarded.has(c)) {
      this.guarded.add(c);
      c.on('error', () => {});
    }
    try {
      this.ready ??= migrate(c, this.schema).then((r) => void (this.timescale = r.timescale));
      await this.ready;
    } catch (e) {
      this.ready = undefined;
      c.release(true);
      throw e;
    }
    return c;
  }

  async deliver(frames: readonly ExportFrame[]): Promise<void> {
    if (frames.length === 0) return;
    const c = await this.client();
    let broken = false;
    try {
      await c.query('BEGIN');
      await this.insert(c, frames);
      await c.query('COMMIT');
    } catch (e) {
      broken = true;
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release(broken);
    }
  }

  private async insert(c: pg.PoolClient, frames: readonly ExportFrame[]): Promise<void> {
    const s = this.schema;
    const f = columns(9);
    const r = columns(14);
    const touched = new Map<string, [string, string, number, Date]>();
    for (const fr of frames) {
      const heardBy = this.gatewayName(fr.author);
      f.push(
        fr.device,
        fr.boot,
        fr.seq,
        new Date(fr.rxTime),
        fr.transport,
        heardBy,
        fr.policy,
        fr.block,
        Buffer.from(fr.frame),
      );
      for (const rec of frameRecords(fr)) {
        r.push(
          fr.device,
          fr.boot,
          fr.seq,
          rec.index,
          rec.name,
          new Date(rec.time),
          rec.value ?? null,
          rec.stringValue ?? null,
          rec.boolValue ?? null,
          rec.dataValue ? Buffer.from(rec.dataValue) : null,
          rec.sum ?? null,
          rec.unit ?? null,
          heardBy,
          fr.policy,
        );
        if (rec.value === undefined) continue;
        for (const step of ROLLUP_STEPS) {
          const bucket = Math.floor(rec.time / (step * 1000)) * step * 1000;
          touched.set(`${fr.device}\u0000${rec.name}\u0000${step}\u0000${bucket}`, [
            fr.device,
            rec.name,
            step,
            new Date(bucket),
          ]);
        }
      }
    }
    await c.query(
      `INSERT INTO ${s}.frames (device, boot, seq, rx_time, transport, heard_by, policy, block, frame)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[],
                            $7::text[], $8::text[], $9::bytea[])
       ON CONFLICT DO NOTHING`,
      f.cols,
    );
    if (r.cols[0]!.length > 0)
      await c.query(
        `INSERT INTO ${s}.records (device, boot, seq, idx, name, time, value, string_value, bool_value, data_value,
                                   sum, unit, heard_by, policy)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::integer[], $5::text[], $6::timestamptz[],
                              $7::float8[], $8::text[], $9::boolean[], $10::bytea[], $11::float8[], $12::text[],
                              $13::text[], $14::text[])
         ON CONFLICT DO NOTHING`,
        r.cols,
      );
    if (touched.size > 0) {
      const k = columns(4);
      for (const t of touched.values()) k.push(...t);
      await c.query(
        `INSERT INTO ${s}.rollups (device, name, step_seconds, bucket, count, min, mean, max, sum)
         SELECT k.device, k.name, k.step, k.bucket, count(r.value), min(r.value), avg(r.value), max(r.value), sum(r.value)
         FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[]) AS k(device, name, step, bucket)
         JOIN ${s}.records r ON r.device = k.device AND r.name = k.name AND r.value IS NOT NULL
          AND r.time >= k.bucket AND r.time < k.bucket + make_interval(secs => k.step)
         GROUP BY k.device, k.name, k.step, k.bucket
         ON CONFLICT (device, name, step_seconds, bucket) DO UPDATE SET
           count = EXCLUDED.count, min = EXCLUDED.min, mean = EXCLUDED.mean, max = EXCLUDED.max, sum = EXCLUDED.sum`,
        k.cols,
      );
    }
  }

  async close(): Promise<void> {
    if (this.pool) await (await this.pool).end();
  }
}

/** Column arrays for an unnest() insert, filled row by row. */
function columns(n: number): { cols: unknown[][]; push: (...row: unknown[]) => void } {
  const cols: unknown[][] = Array.from({ length: n }, () => []);
  return {
    cols,
    push: (...row) => {
      for (const [i, v] of row.entries()) cols[i]!.push(v);
    },
  };
}
