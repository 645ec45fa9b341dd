/**
 * The storage budget with real parts: a gateway process whose data directory is a real tmpfs,
 * `log.maxBytes` a few MiB, a 20-device firmware-sim fleet writing several times that, and a
 * real PostgreSQL sink (started in a temp dir). PostgreSQL is stopped for part of the run:
 * the budget is then exceeded and nothing more is pruned (the sink has not exported it), and
 * pruning resumes once the sink caught up. In the end every frame the fleet produced is in
 * PostgreSQL once, the store holds fewer (pruned), every frame pruned is older than every
 * frame kept (oldest first), and no frame was refused for lack of space.
 */
import { statfsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { readFrames } from '../helpers/frames.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import {
  type GatewayProcess,
  startGatewayProcess,
  stopGatewayProcess,
  writeGatewayConfig,
} from '../helpers/process.js';
import { skipUnless } from '../helpers/system-tools.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
const BUDGET = 4 * MiB; // the least `log.maxBytes` allowed
const FLOOR = 16 * MiB;
const DEVICES = 20;
const FRAMES = 1200; // per device: 24 000 frames, about twice the budget (~350 B a frame held)
const noPostgres = skipUnless('postgres');
const disk = mountTmpfs('outpost-budget-', 'data', '48m', 'the storage budget test');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Storage {
  maxBytes: number;
  usedBytes: number;
  state: string;
  blockedBy?: string;
  blocksPruned: number;
  budgetDays: number | null;
  warning?: string;
}
interface StatusLine {
  storage?: Storage;
  export?: { sinks: { lagBlocks: number; state: string }[] };
  ingest?: { failed: Record<string, number> };
}
const statusLines = (g: GatewayProcess): StatusLine[] => g.logs.filter((l) => 'storage' in l) as StatusLine[];
const last = (g: GatewayProcess): StatusLine | undefined => statusLines(g).at(-1);

async function until(what: string, pred: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe.skipIf(noPostgres || !disk.mounted)('storage budget on a tmpfs with a PostgreSQL sink', () => {
  let pg: PostgresServer | undefined;
  afterAll(async () => {
    await pg?.remove();
    disk.remove();
  });

  it('prunes the oldest exported blocks, never an unexported one, and never refuses ingest', async () => {
    pg = await startPostgres();
    const manifest = generateManifest({ devices: DEVICES, prefix: 'bud' });
    const config = writeGatewayConfig(disk.dir, disk.path, publicView(manifest).devices, [
      'status: { intervalSeconds: 1 }',
      `ingest: { minFreeBytes: ${FLOOR} }`,
      `log: { maxBytes: ${BUDGET} }`,
      'export:',
      '  sinks:',
      `    - { type: postgres, name: warehouse, url: "${pg.url}", batchFrames: 500, maxFramesPerSecond: 0 }`,
    ]);
    const gw = await startGatewayProcess(config);
    const fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${gw.port}`,
      manifest,
      rateHz: 20,
      maxFrames: FRAMES,
      signer: 'node',
      reconnectPeriodMs: 200,
    });
    const minFree = { bytes: Number.POSITIVE_INFINITY };
    const watch = setInterval(() => {
      const s = statfsSync(disk.path);
      minFree.bytes = Math.min(minFree.bytes, Number(s.bavail) * Number(s.bsize));
    }, 100);
    fleet.start();
    try {
      // Past the budget with the sink up: the exported oldest blocks go.
      await until('a first prune', () => (last(gw)?.storage?.blocksPruned ?? 0) > 0, 120_000);
      // The sink goes away: over the budget nothing more may go.
      await pg.stop();
      await until('the budget blocked by export', () => last(gw)?.storage?.blockedBy === 'export', 120_000);
      const blocked = last(gw)!.storage!;
      expect(blocked.usedBytes).toBeGreaterThan(BUDGET);
      expect(blocked.warning).toMatch(/sinks have not exported/);
      await sleep(3_000);
      const stillBlocked = last(gw)!.storage!;
      expect(stillBlocked.state).toBe('blocked');
      expect(stillBlocked.blocksPruned).toBe(blocked.blocksPruned); // nothing pruned while the sink is down
      await pg.start();
      expect(await fleet.settled(240_000)).toBe(true);
      await until(
        'the sink caught up and the store back within its budget',
        () => {
          const l = last(gw);
          return l?.export?.sinks[0]?.lagBlocks === 0 && (l.storage?.usedBytes ?? Infinity) <= BUDGET;
        },
        120_000,
      );
      expect(last(gw)!.storage!.budgetDays).toBeGreaterThan(0);
    } finally {
      clearInterval(watch);
      await fleet.stop();
      await stopGatewayProcess(gw);
    }

    // Ingest was never refused: no frame failed for disk-low, the floor was never reached.
    for (const l of statusLines(gw)) expect(l.ingest?.failed['disk-low'] ?? 0).toBe(0);
    expect(gw.logs.some((l) => String(l.msg).includes('writes refused'))).toBe(false);
    expect(minFree.bytes).toBeGreaterThan(FLOOR);
    expect(gw.logs.some((l) => String(l.msg).startsWith('export to warehouse failed'))).toBe(true);

    const held = await readFrames(disk.path);
    const key = (f: { device: string; boot: number | string; seq: number | string }) =>
      `${f.device}/${f.boot}/${f.seq}`;
    const c = await pg.client();
    try {
      const rows = await c.query<{ device: string; boot: string; seq: string; rx: string }>(
        'SELECT device, boot, seq, (extract(epoch FROM rx_time) * 1000)::bigint AS rx FROM outpost.frames',
      );
      // Every frame the fleet produced is in PostgreSQL, once. If not, say which are missing
      // (gaps in each device's seqs) and whether the store still holds them.
      if (rows.rowCount !== DEVICES * FRAMES) {
        console.error(`storage-budget: fleet ${JSON.stringify(fleet.stats())}`);
        const byMsg = new Map<string, number>();
        for (const l of gw.logs)
          if (Number(l.level) >= 40)
            byMsg.set(String(l.msg).slice(0, 90), (byMsg.get(String(l.msg).slice(0, 90)) ?? 0) + 1);
        console.error(`storage-budget: warnings ${JSON.stringify([...byMsg])}`);
        console.error(`storage-budget: last status ${JSON.stringify(statusLines(gw).at(-1))}`);
        const seqs = new Map<string, number[]>();
        for (const r of rows.rows)
          seqs.set(`${r.device}/${r.boot}`, [...(seqs.get(`${r.device}/${r.boot}`) ?? []), Number(r.seq)]);
        const heldKeys = new Set(held.map(key));
        for (const [dev, list] of seqs) {
          list.sort((x, y) => x - y);
          const gaps: string[] = [];
          for (let i = 1; i < list.length; i++)
            if (list[i]! > list[i - 1]! + 1) {
              const from = list[i - 1]! + 1;
              gaps.push(`${from}-${list[i]! - 1}${heldKeys.has(`${dev}/${from}`) ? ' (held)' : ''}`);
            }
          console.error(
            `storage-budget: ${dev} in PostgreSQL ${list.length}, seqs ${list[0]}..${list.at(-1)}, gaps ${gaps.join(' ')}`,
          );
        }
      }
      expect(rows.rowCount).toBe(DEVICES * FRAMES);
      expect(new Set(rows.rows.map(key)).size).toBe(DEVICES * FRAMES);
      const perDevice = new Map<string, number>();
      for (const r of rows.rows) perDevice.set(r.device, (perDevice.get(r.device) ?? 0) + 1);
      expect([...perDevice.values()]).toEqual(Array(DEVICES).fill(FRAMES));
      // The store holds fewer: the rest was pruned, and only frames older than every frame kept.
      expect(held.length).toBeLessThan((DEVICES * FRAMES) / 2);
      const heldKeys = new Set(held.map(key));
      const inPg = new Set(rows.rows.map(key));
      for (const k of heldKeys) expect(inPg.has(k)).toBe(true);
      const prunedNewest = Math.max(...rows.rows.filter((r) => !heldKeys.has(key(r))).map((r) => Number(r.rx)));
      const keptOldest = Math.min(...held.map((f) => f.rxTime));
      expect(prunedNewest).toBeLessThanOrEqual(keptOldest);
    } finally {
      await c.end();
    }
  }, 600_000);
});
