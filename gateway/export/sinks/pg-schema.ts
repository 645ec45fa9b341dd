/**
 * The PostgreSQL sink's tables, created and migrated by the gateway: `schema_version` holds
 * the versions applied; each migration runs once, in a transaction holding an advisory
 * lock, so two gateways exporting to one database migrate it once.
 *
 *   frames   (device, boot, seq) → rx_time, transport, heard_by, policy, block, frame (the
 *            verbatim COSE_Sign1: anyone can re-verify the device signature)
 *   records  (device, boot, seq, idx) → name, time, value | string_value | bool_value |
 *            data_value | sum, unit, heard_by, policy
 *   rollups  (device, name, 3600, bucket) → count, min, mean, max, sum (1-hour buckets)
 *   minute_rollups(device, name, from, to) → the same per minute, computed from `records`
 *
 * Migration 2 made the export write the way PostgreSQL is fast (bench/README.md, "Export
 * ÷ COPY"): it dropped the foreign key from records to frames (a per-row trigger that cost
 * as much as the COPY of records itself; the sink writes a frame and its records in one
 * transaction) and the 1-minute rollups (about one row per record at one reading a minute;
 * `minute_rollups` answers them from the records' (device, name, time) index instead).
 *
 * With TimescaleDB installed (the extension present in the database), `records` becomes a
 * hypertable on `time`; TimescaleDB needs the partitioning column in every unique index,
 * so there the key is (device, boot, seq, idx, time). Times of records are absolute in
 * the frame or relative to the receive time of the gateway that heard it, so a frame heard
 * by two gateways with relative times could then be stored twice; without TimescaleDB
 * the key is exactly (device, boot, seq, idx).
 */
import type { PoolClient } from 'pg';

/** A stable 64-bit advisory lock id for this schema's migrations. */
const lockId = (schema: string): string => {
  let h = 1469598103934665603n;
  for (const c of Buffer.from(`outpost-export:${schema}`)) h = ((h ^ BigInt(c)) * 1099511628211n) & 0x7fffffffffffffffn;
  return h.toString();
};

const migrations = (s: string, timescale: boolean): string[][] => [
  [
    `CREATE TABLE ${s}.frames (
       device text NOT NULL, boot bigint NOT NULL, seq bigint NOT NULL,
       rx_time timestamptz NOT NULL, transport text NOT NULL, heard_by text NOT NULL,
       policy text NOT NULL, block text NOT NULL, frame bytea NOT NULL,
       PRIMARY KEY (device, boot, seq))`,
    `CREATE TABLE ${s}.records (
       device text NOT NULL, boot bigint NOT NULL, seq bigint NOT NULL, idx integer NOT NULL,
       name text NOT NULL, time timestamptz NOT NULL,
       value double precision, string_value text, bool_value boolean, data_value bytea, sum double precision,
       unit text, heard_by text NOT NULL, policy text NOT NULL,
       PRIMARY KEY (device, boot, seq, idx${timescale ? ', time' : ''})
       ${timescale ? '' : `, FOREIGN KEY (device, boot, seq) REFERENCES ${s}.frames (device, boot, seq)`})`,
    `CREATE INDEX records_series ON ${s}.records (device, name, time)`,
    `CREATE TABLE ${s}.rollups (
       device text NOT NULL, name text NOT NULL, step_seconds integer NOT NULL, bucket timestamptz NOT NULL,
       count bigint NOT NULL, min double precision, mean double precision, max double precision, sum double precision,
       PRIMARY KEY (device, name, step_seconds, bucket))`,
    ...(timescale
      ? [`SELECT create_hypertable('${s}.records', 'time', if_not_exists => TRUE, migrate_data => TRUE)`]
      : []),
  ],
  [
    `ALTER TABLE ${s}.records DROP CONSTRAINT IF EXISTS records_device_boot_seq_fkey`,
    `DELETE FROM ${s}.rollups WHERE step_seconds = 60`,
    `CREATE FUNCTION ${s}.minute_rollups(d text, n text, t0 timestamptz, t1 timestamptz)
       RETURNS TABLE (bucket timestamptz, count bigint, min double precision, mean double precision,
                      max double precision, sum double precision)
       LANGUAGE sql STABLE AS $$
         SELECT to_timestamp(floor(extract(epoch FROM time) / 60) * 60), count(*), min(value), avg(value), max(value), sum(value)
         FROM ${s}.records
         WHERE device = d AND name = n AND time >= t0 AND time < t1 AND value IS NOT NULL
         GROUP BY 1 ORDER BY 1
       $$`,
  ],
];

/** Creates the schema or brings it to the latest migration; returns whether TimescaleDB is in use. */
export async function migrate(c: PoolClient, schema: string): Promise<{ version: number; timescale: boolean }> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockId(schema)]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const cur = await c.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${schema}.schema_version`);
    const timescale =
      (await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).rowCount !== 0 &&
      // a schema made before TimescaleDB was installed keeps its plain tables
      (cur.rows[0]?.v ?? 0) === 0;
    const all = migrations(schema, timescale);
    for (let v = (cur.rows[0]?.v ?? 0) + 1; v <= all.length; v++) {
      for (const sql of all[v - 1]!) await c.query(sql);
      await c.query(`INSERT INTO ${schema}.schema_version (version) VALUES ($1)`, [v]);
    }
    await c.query('COMMIT');
    const hyper =
      timescale ||
      ((await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).rowCount !== 0 &&
        (
          await c.query(
            `SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = 'records'`,
            [schema],
          )
        ).rowCount !== 0);
    return { version: all.length, timescale: hyper };
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
}
