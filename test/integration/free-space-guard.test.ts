/**
 * Free-space guard (ingest.minFreeBytes, gateway/store/free-space.ts): with the guard on,
 * filling the disk makes the gateway refuse frames (not acked, `disk-low`) before lmdb ever
 * meets ENOSPC, so no commit fails (lmdb-js may abort natively after one; test/chaos/README);
 * once space returns it stores every frame exactly once. Real 16 MiB tmpfs (needs root, as CI has).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { Store } from '../../gateway/store/store.js';
import { startGatewayProcess, stopGatewayProcess, writeGatewayConfig } from '../helpers/process.js';

const MiB = 1024 * 1024;
const FLOOR = 4 * MiB;
const dir = mkdtempSync(join(tmpdir(), 'outpost-guard-'));
const dataDir = join(dir, 'data');
let mounted = false;
try {
  mkdirSync(dataDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dataDir], { stdio: 'ignore' });
  mounted = true;
} catch {
  if (process.env.CI) throw new Error('CI must be able to mount a tmpfs for the free-space guard test (run as root)');
}

const free = (): number => {
  const s = statfsSync(dataDir);
  return Number(s.bavail) * Number(s.bsize);
};
let ballast = 0;
/** Takes free space with fallocate'd files until `leave` bytes or fewer remain (0: everything). */
function fillTo(leave: number): void {
  for (let i = 0; i < 12 && free() > leave + 4096; i++) {
    const size = Math.max(4096, free() - leave - i * 65536);
    try {
      execFileSync('fallocate', ['-l', String(size), join(dataDir, `ballast-${ballast}`)], { stdio: 'ignore' });
      ballast++;
    } catch {
      // the gateway took pages meanwhile: ask for less
    }
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(mounted)('free-space guard on a filling disk', () => {
  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', dataDir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses frames below the floor without a failing commit, and stores them all once space returns', async () => {
    const manifest = generateManifest({ devices: 5, prefix: 'guard' });
    const config = writeGatewayConfig(dir, dataDir, publicView(manifest).devices, [`ingest: { minFreeBytes: ${FLOOR} }`]);
    const gw = await startGatewayProcess(config);
    const perDevice = 400;
    const fleet = new Fleet({ brokerUrl: `mqtt://127.0.0.1:${gw.port}`, manifest, rateHz: 100, maxFrames: perDevice, signer: 'node', reconnectPeriodMs: 100 });
    fleet.start();
    const kinds = (k: string) => gw.logs.filter((l) => l.kind === k).length;
    try {
      expect(await fleet.waitFor(() => fleet.stats().acked >= 200, 20_000)).toBe(true);
      // Below the floor but not yet full: the guard must trip on its next reading (≤ 250 ms old).
      fillTo(FLOOR / 2);
      expect(await fleet.waitFor(() => kinds('disk-low') > 0, 10_000)).toBe(true);
      const low = gw.logs.find((l) => l.kind === 'disk-low')!;
      expect(low).toMatchObject({ minFreeBytes: FLOOR });
      expect(low.free as number).toBeLessThan(FLOOR);
      // Now truly full: any lmdb commit that needed a page would fail with ENOSPC. None may be tried.
      fillTo(0);
      await sleep(300); // answers already on their way land
      const acked = fleet.stats().acked;
      await sleep(2_000);
      expect(fleet.stats().acked).toBe(acked); // refused, not acked: the devices keep them
      expect(acked).toBeLessThan(5 * perDevice);
      expect(kinds('failed:disk-low')).toBeGreaterThan(0);
      expect(kinds('store-failed')).toBe(0); // issue: lmdb never met ENOSPC
      expect(gw.child.exitCode).toBeNull();
      // Space returns: writes resume by themselves and the devices' resends are stored.
      for (let i = 0; i < ballast; i++) rmSync(join(dataDir, `ballast-${i}`), { force: true });
      expect(await fleet.settled(30_000)).toBe(true);
      expect(fleet.stats()).toMatchObject({ acked: 5 * perDevice, dropped: 0 });
      expect(gw.logs.some((l) => String(l.msg).includes('writes resume'))).toBe(true);
      expect(kinds('store-failed')).toBe(0);
    } finally {
      await fleet.stop();
      expect(await stopGatewayProcess(gw)).toBe(0);
    }
    const store = Store.open(dataDir);
    const stored = [...store.queryFrames({})];
    await store.close();
    expect(stored).toHaveLength(5 * perDevice);
    expect(new Set(stored.map((f) => `${f.device}/${f.boot}/${f.seq}`)).size).toBe(5 * perDevice);
    const audit = execFileSync(process.execPath, [new URL('../../bin/gateway.js', import.meta.url).pathname, 'audit', 'verify', '--data', dataDir], { encoding: 'utf8' });
    expect(audit).toContain('ok: no faults');
    expect(audit).toContain(`${5 * perDevice} distinct`);
  }, 90_000);
});
