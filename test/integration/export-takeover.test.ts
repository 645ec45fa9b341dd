/**
 * A sink shared by two sibling gateway processes (sync over loopback TCP), exporting to a real
 * PostgreSQL (temp dir, unix socket): gw-0 owns the sink and logs its cursor as signed blocks,
 * gw-1 stands by. gw-0 is SIGKILLed mid-export (throttled, so batches are confirmed after its
 * last cursor block); gw-1 takes the sink over from the cursor blocks it synced and exports
 * the rest and its own new frames. gw-0 restarted logs its cursor again and gw-1 hands the
 * sink back. Every frame is in `frames` once and each of its records once, and the rollups
 * count each record once.
 */
import { appendFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/devices.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import {
  type GatewayProcess,
  publishFrames,
  type SiblingConfig,
  startGatewayProcess,
  stopGatewayProcess,
  writeSiblingConfigs,
} from '../helpers/process.js';
import { skipUnless } from '../helpers/system-tools.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(100);
  }
  return false;
}

const sinkStatus = (g: GatewayProcess): { frames: number; state: string } | undefined => {
  for (let i = g.logs.length - 1; i >= 0; i--) {
    const e = (g.logs[i] as { export?: { sinks: { frames: number; state: string }[] } }).export;
    if (e) return e.sinks[0];
  }
  return undefined;
};

describe.skipIf(skipUnless('postgres'))('a shared export sink taken over by a sibling', () => {
  let pg: PostgresServer | undefined;
  let configs: SiblingConfig[] = [];
  const running: GatewayProcess[] = [];
  afterAll(async () => {
    for (const g of running) if (g.child.exitCode === null) g.child.kill('SIGKILL');
    await pg?.remove();
    for (const c of configs) c.cleanup();
  });

  it('gw-0 SIGKILLed mid-export: gw-1 resumes from its cursor blocks, every frame and record stored once; gw-0 back takes it again', async () => {
    pg = await startPostgres();
    const devices = [testDevice('tk-0'), testDevice('tk-1')];
    configs = await writeSiblingConfigs(devices, 2);
    for (const c of configs)
      appendFileSync(
        c.file,
        [
          '',
          'status: { intervalSeconds: 1 }',
          // A block a commit group, so gw-0's 160 frames are 16 blocks (a batch takes whole blocks):
          // the kill then falls mid-export. The journal's window would put them in one or two.
          'log: { sealAfterMs: 0 }',
          'export:',
          '  rollups: { enabled: false }',
          '  sinks:',
          `    - { type: postgres, name: warehouse, url: "${pg.url}", owner: gw-0, batchFrames: 10, maxFramesPerSecond: 15, cursorBlockSeconds: 1, takeoverAfterSeconds: 5 }`,
        ].join('\n'),
      );
    let [g0, g1] = await Promise.all(configs.map((c) => startGatewayProcess(c.file)));
    running.push(g0!, g1!);

    const client = await pg.client();
    const exported = async (): Promise<number> => {
      const r = await client
        .query<{ n: string }>('SELECT count(*) AS n FROM outpost.frames')
        .catch(() => ({ rows: [{ n: '0' }] }));
      return Number(r.rows[0]!.n);
    };
    try {
      // 160 frames heard by gw-0 in 16 blocks, exported at 15 frames/s: all synced to gw-1 before they are all exported.
      for (let i = 0; i < 160; i += 10) {
        await publishFrames(
          g0!.port,
          devices[0]!,
          1,
          [...Array(10).keys()].map((k) => i + k),
        );
        await sleep(50);
      }
      // gw-1's status (every second) counts the frames it holds: all of gw-0's, synced.
      const heldByG1 = (): number => {
        for (let i = g1!.logs.length - 1; i >= 0; i--) {
          const n = (g1!.logs[i] as { framesStored?: number }).framesStored;
          if (n !== undefined) return n;
        }
        return 0;
      };
      expect(await until(() => heldByG1() === 160, 30_000)).toBe(true);
      expect(await until(async () => (await exported()) >= 40, 30_000)).toBe(true);
      expect(g1!.logs.some((l) => String(l.msg).includes('taking it over'))).toBe(false);
      g0!.child.kill('SIGKILL');
      await new Promise((r) => g0!.child.once('exit', r));
      const atKill = await exported();
      expect(atKill).toBeLessThan(160);

      // New frames at gw-1; no cursor block from gw-0 comes: gw-1 takes over and exports everything.
      await publishFrames(g1!.port, devices[1]!, 1, [...Array(20).keys()]);
      expect(await until(async () => (await exported()) >= 180, 60_000)).toBe(true);
      expect(g1!.logs.some((l) => String(l.msg).includes('taking it over'))).toBe(true);
      // It resumed from gw-0's cursor blocks, not from the start of the log.
      // Read from a status line (one a second) two lines after the export was seen complete, so it
      // counts every send: waited for, not a fixed pause a loaded box can outlast.
      const from = g1!.logs.length;
      const statusLines = () => g1!.logs.slice(from).filter((l) => (l as { export?: unknown }).export).length;
      expect(await until(() => statusLines() >= 2, 15_000)).toBe(true);
      const sent = sinkStatus(g1!)?.frames ?? 0;
      expect(sent).toBeGreaterThanOrEqual(20 + 160 - atKill);
      expect(sent).toBeLessThan(180);

      // gw-0 comes back: it exports again (its cursor merged with gw-1's blocks) and gw-1 stands by.
      g0 = await startGatewayProcess(configs[0]!.file);
      running.push(g0);
      await publishFrames(g0.port, devices[0]!, 2, [...Array(20).keys()]);
      expect(await until(async () => (await exported()) >= 200, 60_000)).toBe(true);
      expect(await until(() => g1!.logs.some((l) => String(l.msg).includes('standing by')), 30_000)).toBe(true);

      const frames = await client.query<{ n: string; d: string }>(
        'SELECT count(*) AS n, count(DISTINCT (device, boot, seq)) AS d FROM outpost.frames',
      );
      expect(frames.rows[0]).toEqual({ n: '200', d: '200' });
      // One `temp` record per frame (test devices), stored once; the rollups counted each once.
      const records = await client.query<{ n: string; d: string }>(
        'SELECT count(*) AS n, count(DISTINCT (device, boot, seq, idx)) AS d FROM outpost.records',
      );
      expect(records.rows[0]).toEqual({ n: '200', d: '200' });
      const hour = await client.query<{ n: string }>(
        'SELECT sum(count) AS n FROM outpost.rollups WHERE step_seconds = 3600',
      );
      expect(hour.rows[0]!.n).toBe('200');
      const heard = await client.query<{ heard_by: string; n: string }>(
        'SELECT heard_by, count(*) AS n FROM outpost.frames GROUP BY heard_by ORDER BY heard_by',
      );
      expect(heard.rows).toEqual([
        { heard_by: 'gw-0', n: '180' },
        { heard_by: 'gw-1', n: '20' },
      ]);
    } finally {
      await client.end();
    }
    for (const g of [g0, g1]) expect(await stopGatewayProcess(g!)).toBe(0);
  }, 180_000);
});
