/**
 * Export to a real Mosquitto as the cloud broker (TLS with its own CA, a password file, no
 * anonymous clients): a fleet streams into a gateway whose mqtt sink republishes every frame
 * (QoS 1, decoded JSON with the signed frame) while the broker is restarted mid-run. A
 * persistent subscriber (clean session false, QoS 1) sees every stored frame, by its
 * (device, boot, seq) key; a message seen twice (a batch resent after the restart cut its
 * PUBACKs) carries the same key and the same signed bytes, so the subscriber's dedup makes
 * it once. Wrong credentials are refused.
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { toHex } from '../../protocols/index.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { startTlsMosquitto, type TlsBroker } from '../helpers/mosquitto-tls.js';
import { skipUnless } from '../helpers/system-tools.js';

describe.skipIf(skipUnless('mosquitto', 'mosquitto-clients', 'openssl'))('export to a cloud MQTT broker', () => {
  const tmp = tempDir('outpost-export-mqtt-');
  let broker: TlsBroker | undefined;
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await broker?.stop();
    tmp.cleanup();
  });

  it('delivers every frame to a subscriber across a broker restart, once by its key', async () => {
    broker = await startTlsMosquitto(tmp.dir);
    const b = broker;
    await expect(
      mqtt.connectAsync(b.url, { ca: b.ca, username: b.username, password: 'wrong', reconnectPeriod: 0 }),
    ).rejects.toThrow();

    const seen = new Map<string, string[]>();
    const sub = await mqtt.connectAsync(b.url, {
      ca: b.ca,
      username: 'subscriber',
      password: b.password,
      clientId: 'cloud-subscriber',
      clean: false,
      reconnectPeriod: 200,
    });
    closers.push(() => sub.endAsync(true));
    await sub.subscribeAsync('outpost/v1/export/#', { qos: 1 });
    sub.on('message', (topic, payload) => {
      const m = JSON.parse(payload.toString()) as { device: string; boot: number; seq: number; frame: string };
      expect(topic).toBe(`outpost/v1/export/gw-test/${m.device}`);
      const k = `${m.device}/${m.boot}/${m.seq}`;
      seen.set(k, [...(seen.get(k) ?? []), m.frame]);
    });

    const manifest = generateManifest({ devices: 5, prefix: 'mq' });
    const { gw } = await startTestGateway(join(tmp.dir, 'data'), [...publicView(manifest).devices], {
      export: {
        sinks: [
          {
            type: 'mqtt',
            name: 'cloud',
            url: b.url,
            username: b.username,
            passwordFile: b.passwordFile,
            tls: { ca: b.caFile },
            batchFrames: 50,
          },
        ],
      },
    });
    closers.push(() => gw.stop());
    const fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${gw.broker!.port}`,
      manifest,
      rateHz: 10,
      maxFrames: 120,
      signer: 'node',
    });
    closers.push(() => fleet.stop());
    fleet.start();
    await waitFor(() => seen.size >= 100, 30_000, 'first frames at the subscriber');
    await b.restart(3_000);
    expect(await fleet.settled(60_000)).toBe(true);
    const status = () => gw.exports!.status().sinks[0]!;
    await waitFor(() => status().lagBlocks === 0 && seen.size >= 600, 60_000, 'the sink caught up');
    await new Promise((r) => setTimeout(r, 1_000)); // stragglers of a resent batch

    const stored = [...gw.frames.query({})];
    expect(stored).toHaveLength(600);
    expect(new Set(seen.keys())).toEqual(new Set(stored.map((f) => `${f.device}/${f.boot}/${f.seq}`)));
    for (const f of stored) {
      const copies = seen.get(`${f.device}/${f.boot}/${f.seq}`)!;
      expect(new Set(copies)).toEqual(new Set([toHex(f.frame)])); // a repeat is the same signed frame
    }
    const repeats = [...seen.values()].filter((c) => c.length > 1).length;
    // Only a batch in flight when the broker went down can be seen twice.
    expect(repeats).toBeLessThanOrEqual(2 * 50);
    expect(status().failures).toBeGreaterThan(0); // the restart was felt
  }, 180_000);
});
