/** After a restart the device view is rebuilt from the store: last frame and reading history survive, online state does not. */
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir } from '../helpers/env.js';

describe('API after a restart', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const dev = testDevice('keeper');
  const TOKEN = 'restart-test-token-0123456789';

  it('[seed] shows the last frame and the recent readings from the store, and the device as offline', async () => {
    const devices = [{ id: dev.id, publicKey: dev.publicKeyHex }];
    const first = await startTestGateway(tmp.dir, devices, { api: { port: 0, token: TOKEN } });
    const c = await mqtt.connectAsync(first.url, { clientId: dev.id, reconnectPeriod: 0 });
    for (let seq = 1; seq <= 70; seq++)
      await c.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(1, seq, seq / 10)), { qos: 1 });
    await c.endAsync();
    await first.gw.stop();

    const second = await startTestGateway(tmp.dir, devices, { api: { port: 0, token: TOKEN } });
    try {
      const r = await fetch(`http://127.0.0.1:${running(second.gw, 'api').port}/api/devices/${dev.id}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const d = (await r.json()) as {
        online: boolean;
        lastFrame: { seq: number };
        readings: { name: string; value: number; history: number[] }[];
      };
      expect(d.online).toBe(false);
      expect(d.lastFrame.seq).toBe(70);
      const temp = d.readings.find((x) => x.name === 'temp')!;
      expect(temp.value).toBe(7);
      // The last 60 values, oldest first.
      expect(temp.history).toHaveLength(60);
      expect(temp.history[0]).toBeCloseTo(1.1);
      expect(temp.history[59]).toBeCloseTo(7);
    } finally {
      await second.gw.stop();
    }
  });
});
