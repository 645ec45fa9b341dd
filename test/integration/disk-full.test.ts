/**
 * Disk full: commits fail, frames are not acked (the devices keep them and
 * resend), the gateway process keeps running, and once space returns every
 * frame is stored exactly once. Uses a real 1 MiB tmpfs (needs root, as CI has).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import {
  expectStoredOnceAndAudited,
  startGatewayProcess,
  stopGatewayProcess,
  writeGatewayConfig,
} from '../helpers/process.js';

const disk = mountTmpfs('outpost-full-', 'data', '1m', 'the disk-full test');
const { dir, path: dataDir, mounted } = disk;

describe.runIf(mounted)('disk full', () => {
  afterAll(() => disk.remove());

  // Its waits (20 s to fill, 30 s to settle, the audit) exceed vitest's default 30 s on a loaded box.
  it('refuses frames it cannot store, keeps running, and stores them all once space returns', {
    timeout: 90_000,
  }, async () => {
    const manifest = generateManifest({ devices: 5, prefix: 'full' });
    // Guard off (ingest.minFreeBytes: 0): this test is about lmdb's own ENOSPC path; the guarded one is free-space-guard.test.ts.
    const config = writeGatewayConfig(dir, dataDir, publicView(manifest).devices, ['ingest: { minFreeBytes: 0 }']);
    const gw = await startGatewayProcess(config);
    const perDevice = 400; // well over 1 MiB of store in all
    const fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${gw.port}`,
      manifest,
      rateHz: 200,
      maxFrames: perDevice,
      signer: 'node',
      reconnectPeriodMs: 100,
    });
    fleet.start();
    try {
      const full = () => gw.logs.some((l) => l.kind === 'store-failed');
      expect(await fleet.waitFor(full, 20_000)).toBe(true);
      expect(fleet.stats().acked).toBeLessThan(5 * perDevice);
      expect(gw.child.exitCode).toBeNull(); // still running
      execFileSync('mount', ['-o', 'remount,size=64m', dataDir]);
      expect(await fleet.settled(30_000)).toBe(true);
      expect(fleet.stats()).toMatchObject({ acked: 5 * perDevice, dropped: 0 });
    } finally {
      await fleet.stop();
      expect(await stopGatewayProcess(gw)).toBe(0);
    }
    // Every frame stored once, and the block log survived the failed commits: whole chains, every frame in a block once.
    await expectStoredOnceAndAudited(dataDir, 5 * perDevice);
  });
});
