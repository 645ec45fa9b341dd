/**
 * PostgreSQL sink (the `pg` client: pure JavaScript, no native build on a Pi, unix sockets and
 * TLS, one connection reused; `postgres` would do as well, `pg` is what most deployments
 * already run and audit). A batch is written by COPY straight into the tables, or, when that
 * meets a row already stored (a resend, a sibling exporting the same frame), by one upsert
 * statement that skips what is there; the next few batches upsert too (pg-batch.ts):
 *
 *   frames   keyed by (device, boot, seq)                 never duplicated
 *   records  keyed by (device, boot, seq, record index)   never duplicated
 *   rollups  (device, name, 3600, bucket) += the new records rows of the batch (pg-rollups.ts)
 *
 * so a resend never duplicates (nor adds to a bucket) and a late frame lands in its buckets.
 * The batch counts as delivered when its transaction committed.
 */
import type pg from 'pg';
import type { PostgresSinkConfig } from '../config.js';
import type { ExportFrame } from '../source.js';
import { batchRows, copyBatch, isUniqueViolation, upsertBatch } from './pg-batch.js';
import { migrate } from './pg-schema.js';
import { readSecret, tlsOptions } from '../../outbound.js';
import type { DataSink, GatewayName } from './types.js';

/** Batches written by upsert after one met rows already stored, before COPY is tried again. */
const UPSERTS_AFTER_CONFLICT = 16;

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
  /** Batches left to upsert before trying COPY again (0: COPY). */
  private upsertsLeft = 0;

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
    const rows = batchRows(frames, this.gatewayName);
    const c = await this.client();
    let broken = false;
    try {
      if (this.upsertsLeft === 0)
        try {
          await copyBatch(c, this.schema, rows);
          return;
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          // Rows already there: this batch, and the next few (a sibling may be exporting the same frames), upsert.
          this.upsertsLeft = UPSERTS_AFTER_CONFLICT;
        }
      this.upsertsLeft--;
      await upsertBatch(c, this.schema, rows);
    } catch (e) {
      broken = true;
      throw e;
    } finally {
      c.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.pool) await (await this.pool).end();
  }
}
