/**
 * Export to a real PostgreSQL (started in a temp dir, unix socket only): a 20-device
 * firmware-sim fleet at 2 Hz into a gateway process whose postgres sink may read only the
 * `telemetry` policy. Mid-run PostgreSQL is stopped for 15 s and started again, and during
 * the catch-up that follows (bounded at 150 frames/s) the gateway is SIGKILLed and
 * restarted. In the end every stored telemetry frame is in `frames` once with its verbatim
 * signed bytes, each of its SenML records in `records` once, the rollups agree with the
 * records, and no row of the `doors` policy (which the sink may not read) is there.
 *
 * About 45 s of fleet time instead of the 60 s the issue names: the same outage, the same
 * kill, the same assertions.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { frameRecords } from '../../gateway/export/records.js';
import { freePort, tempDir } from '../helpers/env.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import {
  type GatewayProcess,
  startGatewayProcess,
  stopGatewayProcess,
  writeGatewayConfig,
} from '../helpers/process.js';
import { readFrames } from '../helpers/frames.js';
import { skipUnless } from '../helpers/system-tools.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DOORS = ['pgx-0001', 'pgx-0002', 'pgx-0003'];

type Sink = { lagBlocks: number; state: string };
const lastSink = (g: GatewayProcess): Sink | undefined => {
  for (let i = g.logs.length - 1; i >= 0; i--) {
    const e = (g.logs[i] as { export?: { sinks: Sink[] } }).export;
    if (e) return e.sinks[0];
  }
  return undefined;
};

describe.skipIf(skipUnless('postgres'))('export to PostgreSQL', () => {
  const tmp = tempDir('outpost-export-pg-');
  let pg: PostgresServer | undefined;
  afterAll(async () => {
    await pg?.remove();
    tmp.cleanup();
  });

  it('stores every readable frame and record once across a database outage and a gateway SIGKILL', async () => {
    pg = await startPostgres();
    const manifest = generateManifest({ devices: 20, prefix: 'pgx' });
    const warehouse = generateManifest({ devices: 1, prefix: 'wh' }).devices[0]!.publicKey;
    const policyFile = join(tmp.dir, 'policies.yaml');
    writeFileSync(
      policyFile,
      [
        'principals:',
        `  warehouse: { key: "${warehouse}", kind: cloud }`,
        'policies:',
        '  telemetry: { relations: { holder: ["*"], reader: [warehouse] } }',
        '  doors: { relations: { holder: ["*"] } }',
        'tagging:',
        ...DOORS.map((d) => `  - { policy: doors, device: ${d} }`),
        'default: telemetry',
      ].join('\n'),
    );
    const dataDir = join(tmp.dir, 'data');
    const config = writeGatewayConfig(tmp.dir, dataDir, publicView(manifest).devices, [
      `policy: { file: ${JSON.stringify(policyFile)} }`,
      'status: { intervalSeconds: 1 }',
      'export:',
      '  sinks:',
      `    - { type: postgres, name: warehouse, principal: warehouse, url: "${pg.url}", batchFrames: 100, maxFramesPerSecond: 150 }`,
    ]);
    // A fixed port, so the devices find the restarted gateway where they left it.
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace('mqtt: { port: 0 }', `mqtt: { port: ${await freePort()} }`),
    );
    let gw = await startGatewayProcess(config);
    const rateHz = 2;
    const fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${gw.port}`,
      manifest,
      rateHz,
      maxFrames: 90, // 45 s
      signer: 'node',
      reconnectPeriodMs: 200,
    });
    fleet.start();
    const logsBefore: Record<string, unknown>[] = [];
    try {
      await sleep(6_000);
      await pg.stop(); // 15 s without the database
      await sleep(15_000);
      expect(gw.child.exitCode, gw.stderr.join('\n')).toBeNull(); // the database going away is not the gateway's end
      expect(lastSink(gw)?.state).toBe('failing');
      await pg.start();
      await sleep(2_500);
      // Still catching up (150 frames/s against ~600 waiting, 40 more each second): kill it mid-export.
      const before = lastSink(gw)!;
      expect(before.lagBlocks).toBeGreaterThan(0);
      gw.child.kill('SIGKILL');
      await new Promise((r) => gw.child.once('exit', r));
      logsBefore.push(...gw.logs);
      gw = await startGatewayProcess(config); // same config, port, store and cursor: the devices reconnect
      expect(await fleet.settled(90_000)).toBe(true);
      const deadline = Date.now() + 60_000;
      await sleep(1_500);
      while (Date.now() < deadline && (lastSink(gw)?.lagBlocks ?? 1) > 0) await sleep(250);
      expect(lastSink(gw)?.lagBlocks).toBe(0);
    } finally {
      await fleet.stop();
      await stopGatewayProcess(gw);
    }
    expect(logsBefore.some((l) => String(l.msg).startsWith('export to warehouse failed'))).toBe(true);

    const stored = await readFrames(dataDir);
    const readable = stored.filter((f) => !DOORS.includes(f.device));
    expect(readable.length).toBeGreaterThan(17 * 60);
    expect(stored.length - readable.length).toBeGreaterThan(0);

    const c = await pg.client();
    try {
      const frames = await c.query<{ device: string; boot: string; seq: string; frame: Buffer; policy: string }>(
        'SELECT device, boot, seq, frame, policy FROM outpost.frames',
      );
      const key = (f: { device: string; boot: number | string; seq: number | string }) =>
        `${f.device}/${f.boot}/${f.seq}`;
      const byKey = new Map(frames.rows.map((r) => [key(r), r]));
      expect(byKey.size).toBe(frames.rowCount);
      expect(frames.rowCount).toBe(readable.length);
      for (const f of readable) {
        const row = byKey.get(key(f));
        expect(row, key(f)).toBeDefined();
        expect(Buffer.compare(row!.frame, Buffer.from(f.frame))).toBe(0); // the signed bytes, verbatim
        expect(row!.policy).toBe('telemetry@1');
      }
      const records = await c.query<{ n: string; d: string }>(
        'SELECT count(*) AS n, count(DISTINCT (device, boot, seq, idx)) AS d FROM outpost.records',
      );
      const expected = readable.reduce((n, f) => n + frameRecords(f).length, 0);
      expect(Number(records.rows[0]!.n)).toBe(expected);
      expect(Number(records.rows[0]!.d)).toBe(expected);
      const doors = await c.query(
        `SELECT 1 FROM outpost.records WHERE device = ANY($1) OR policy LIKE 'doors%'
         UNION ALL SELECT 1 FROM outpost.frames WHERE device = ANY($1) OR policy LIKE 'doors%'`,
        [DOORS],
      );
      expect(doors.rowCount).toBe(0);
      // Rollups: each bucket's count, min, max and sum equal what the records rows give.
      const diff = await c.query(
        `SELECT r.device, r.name, r.step_seconds, r.bucket FROM outpost.rollups r
         LEFT JOIN LATERAL (
           SELECT count(value) AS n, min(value) AS lo, max(value) AS hi, sum(value) AS s FROM outpost.records x
           WHERE x.device = r.device AND x.name = r.name AND x.value IS NOT NULL
             AND x.time >= r.bucket AND x.time < r.bucket + make_interval(secs => r.step_seconds)) a ON true
         WHERE a.n <> r.count OR a.lo <> r.min OR a.hi <> r.max OR abs(a.s - r.sum) > 1e-9 * greatest(1, abs(a.s))`,
      );
      expect(diff.rows).toEqual([]);
      const buckets = await c.query<{ n: string }>(
        'SELECT sum(count) AS n FROM outpost.rollups WHERE step_seconds = 3600',
      );
      const numeric = await c.query<{ n: string }>('SELECT count(*) AS n FROM outpost.records WHERE value IS NOT NULL');
      expect(buckets.rows[0]!.n).toBe(numeric.rows[0]!.n);
      const version = await c.query<{ v: number }>('SELECT max(version) AS v FROM outpost.schema_version');
      expect(version.rows[0]!.v).toBe(2);
    } finally {
      await c.end();
    }
  }, 240_000);
});
