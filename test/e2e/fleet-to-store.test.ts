/**
 * End to end over real TCP: a firmware-sim fleet (its own @noble signer, MQTT
 * link and unacked buffer) → embedded aedes → gateway ingest → lmdb store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBody, decodeSign1 } from '../../protocols/index.js';
import { forgedFrame, replayFrame, unknownDeviceFrame } from '../../firmware-sim/faults.js';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, manifestSeed, publicView } from '../../firmware-sim/manifest.js';
import type { Gateway } from '../../gateway/gateway.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';

describe('firmware-sim fleet → aedes → gateway → store', () => {
  const tmp = tempDir();
  const manifest = generateManifest({ devices: 20, prefix: 'e2e', site: 'plant-a' });
  let gw: Gateway;
  let lines: Record<string, unknown>[];
  let fleet: Fleet;

  beforeAll(async () => {
    ({ gw, lines } = await startTestGateway(
      tmp.dir,
      publicView(manifest).devices.map((d) => ({ id: d.id, publicKey: d.publicKey })),
      // One boot remembered per device: a frame of an earlier boot is past the replay memory.
      { ingest: { replayBoots: 1 } },
    ));
    fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${running(gw, 'broker').port}`,
      manifest,
      rateHz: 20,
      maxFrames: 15,
    });
    fleet.start();
  });
  afterAll(async () => {
    await fleet.stop();
    await gw.stop();
    tmp.cleanup();
  });

  it('stores every frame of every device exactly once, verbatim', async () => {
    expect(await fleet.settled(20_000)).toBe(true);
    const stored = [...gw.frames.query({})];
    expect(stored).toHaveLength(20 * 15);
    const keys = new Set(stored.map((f) => `${f.device}/${f.boot}/${f.seq}`));
    expect(keys.size).toBe(stored.length);
    for (const d of manifest.devices) {
      const mine = stored.filter((f) => f.device === d.id);
      expect(mine).toHaveLength(15);
      // The stored bytes still carry the device's own signature and its SenML body.
      const cose = decodeSign1(mine[0]!.frame);
      expect(cose.ok).toBe(true);
      if (cose.ok) expect(decodeBody(cose.value.payload)).toMatchObject({ ok: true, value: { type: 'reading' } });
    }
    expect(fleet.stats().acked).toBe(20 * 15);
    await waitFor(() => gw.activity.online() === 20, 2000, 'devices online');
  });

  it('rejects a forged frame, an unknown device and an old replay, counts and logs them, and keeps the good frames', async () => {
    const before = gw.frames.count();
    const dev = fleet.devices[0]!;
    const forged = forgedFrame(dev.id, { boot: dev.boot, seq: 10_000 });
    const unknown = unknownDeviceFrame();
    const replay = replayFrame(dev)!; // a frame the gateway already acked
    expect(replay).toBeDefined();
    await fleet.inject(dev.id, forged);
    await fleet.inject(dev.id, unknown.bytes, `outpost/v1/dev/${unknown.id}/up`);
    await fleet.inject(dev.id, replay);
    // A correctly signed frame of a boot older than the one remembered, never stored: past the replay memory.
    const old = fleet.devices[1]!;
    await fleet.inject(old.id, forgedFrame(old.id, { boot: 0, seq: 1, seed: manifestSeed(manifest.devices[1]!) }));

    const s = gw.ingest.stats;
    expect(s.rejected.get('bad-signature')).toBe(1);
    expect(s.rejected.get('unknown-device')).toBe(1);
    expect(s.rejected.get('replay')).toBe(1);
    expect(s.duplicates).toBeGreaterThanOrEqual(1);
    expect(gw.frames.count()).toBe(before);
    const logged = lines.filter((l) => l.msg === 'frame rejected').map((l) => l.reason);
    expect(logged).toEqual(expect.arrayContaining(['bad-signature', 'unknown-device', 'replay']));
    expect(lines.some((l) => l.kind === 'duplicate' && l.device === dev.id)).toBe(true);
  });
});
