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
 * The batch counts as delivered when its transaction committed. During a catch-up the client
 * stays checked out from one batch to the next, and the exporter's read-ahead batch is encoded
 * (`prepare`) while the batch before it is written.
 */
import type pg from 'pg';
import type { PostgresSinkConfig } from '../config.js';
import type { ExportFrame } from '../source.js';
import { batchRows, copyBatch, type EncodedBatch, encodeBatch, isUniqueViolation, upsertBatch } from './pg-batch.js';
import { migrate } from './pg-schema.js';
import { readSecret, tlsOptions } from '../../outbound.js';
import type { DataSink, GatewayName } from './types.js';

/** Batches written by upsert after one met rows already stored, before COPY is tried again. */
const UPSERTS_AFTER_CONFLICT = 16;
/** How long the client stays checked out after a batch, for the next one (a catch-up's batches come back to back). */
const HOLD_MS = 1000;

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
  /**
   * The client kept checked out between batches of a catch-up: with it at hand, `deliver`
   * queues the whole transaction before it first waits, so the server writes this batch while
   * the exporter reads the next. Given back to the pool after HOLD_MS without a batch.
   */
  private held?: pg.PoolClient;
  private holdTimer?: NodeJS.Timeout;
  /** The batch encoded ahead (`prepare`), for `deliver` of the same frames. */
  private prepared?: { readonly frames: readonly ExportFrame[]; readonly encoded: EncodedBatch };

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

  /** Encodes a batch the exporter will deliver next, while the one in flight is written. */
  prepare(frames: readonly ExportFrame[]): void {
    if (frames.length > 0 && this.upsertsLeft === 0)
      this.prepared = { frames, encoded: encodeBatch(frames, this.gatewayName) };
  }

  async deliver(frames: readonly ExportFrame[]): Promise<void> {
    if (frames.length === 0) return;
    const prepared = this.prepared?.frames === frames ? this.prepared.encoded : undefined;
    this.prepared = undefined;
    clearTimeout(this.holdTimer);
    const c = this.held ?? (await this.client());
    this.held = undefined;
    try {
      if (this.upsertsLeft === 0)
        try {
          await copyBatch(c, this.schema, prepared ?? encodeBatch(frames, this.gatewayName));
          this.hold(c);
          return;
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          // Rows already there: this batch, and the next few (a sibling may be exporting the same frames), upsert.
          this.upsertsLeft = UPSERTS_AFTER_CONFLICT;
        }
      this.upsertsLeft--;
      await upsertBatch(c, this.schema, batchRows(frames, this.gatewayName));
      this.hold(c);
    } catch (e) {
      c.release(true);
      throw e;
    }
  }

  /** Keeps the client for the next batch, or gives it back to the pool after HOLD_MS. */
  private hold(c: pg.PoolClient): void {
    this.held = c;
    this.holdTimer = setTimeout(() => this.unhold(), HOLD_MS);
    this.holdTimer.unref();
  }

  private unhold(): void {
    clearTimeout(this.holdTimer);
    this.held?.release();
    this.held = undefined;
  }

  async close(): Promise<void> {
    this.unhold();
    if (this.pool) await (await this.pool).end();
  }
}
