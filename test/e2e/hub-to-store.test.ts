/**
 * End to end over real TCP: firmware-sim devices behind hubs (firmware-sim/hub.ts: 10 devices
 * per MQTT connection, each frame signed by its own device) → the gateway's embedded aedes, as
 * an anonymous client on loopback → ingest → lmdb: every frame stored once under its device.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubFleet } from '../../firmware-sim/hub.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import type { Gateway } from '../../gateway/gateway.js';
import { running, startTestGateway, tempDir } from '../helpers/env.js';

describe('firmware-sim hubs → aedes → gateway → store', () => {
  const tmp = tempDir();
  const manifest = generateManifest({ devices: 20, prefix: 'hub-e2e', site: 'plant-a' });
  let gw: Gateway;
  let fleet: HubFleet;

  beforeAll(async () => {
    ({ gw } = await startTestGateway(
      tmp.dir,
      publicView(manifest).devices.map((d) => ({ id: d.id, publicKey: d.publicKey })),
    ));
    fleet = new HubFleet({
      brokerUrl: `mqtt://127.0.0.1:${running(gw, 'broker').port}`,
      manifest,
      perConnection: 10,
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

  it('stores every frame of every device exactly once, acked to its device', async () => {
    expect(await fleet.waitFor((s) => s.acked === 20 * 15, 20_000)).toBe(true);
    const stored = [...gw.frames.query({})];
    expect(stored).toHaveLength(20 * 15);
    expect(new Set(stored.map((f) => `${f.device}/${f.boot}/${f.seq}`)).size).toBe(stored.length);
    for (const d of manifest.devices) expect(stored.filter((f) => f.device === d.id)).toHaveLength(15);
    expect(fleet.stats()).toMatchObject({ generated: 300, pending: 0, dropped: 0 });
  });
});
