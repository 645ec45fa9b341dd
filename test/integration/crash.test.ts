/**
 * Durability: a gateway child process killed with SIGKILL mid-stream loses no
 * frame it had PUBACKed (the ack is sent only after the lmdb commit is flushed).
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../protocols/index.js';
import { readFrames } from '../helpers/frames.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';
import { startGatewayProcess, writeGatewayConfig } from '../helpers/process.js';

describe('crash safety', () => {
  const tmp = tempDir();
  afterEach(() => tmp.cleanup());

  it('keeps every PUBACKed frame across SIGKILL', async () => {
    const devices = Array.from({ length: 8 }, (_, i) => testDevice(`crash-${i}`));
    const configFile = writeGatewayConfig(
      tmp.dir,
      join(tmp.dir, 'data'),
      devices.map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
    );
    const { child, port } = await startGatewayProcess(configFile);
    const acked = new Set<string>();
    let sent = 0;
    const clients = await Promise.all(
      devices.map((d) => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: d.id, reconnectPeriod: 0 })),
    );
    let killed = false;
    // Each device keeps up to 20 QoS 1 publishes in flight until the kill.
    const loops = devices.map(async (d, i) => {
      const c = clients[i]!;
      let seq = 0;
      while (!killed) {
        const batch = Array.from({ length: 20 }, () => ++seq);
        sent += batch.length;
        await Promise.all(
          batch.map((s) =>
            c.publishAsync(topics.up(d.id), Buffer.from(d.frame(1, s)), { qos: 1 }).then(
              () => acked.add(`${d.id}/${s}`),
              () => {},
            ),
          ),
        );
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGKILL');
    killed = true;
    await new Promise((r) => child.once('exit', r));
    for (const c of clients) c.end(true);
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 2000))]);

    expect(acked.size).toBeGreaterThan(100); // the stream was really running when killed
    const stored = new Set((await readFrames(join(tmp.dir, 'data'))).map((f) => `${f.device}/${f.seq}`));
    const lost = [...acked].filter((k) => !stored.has(k));
    expect(lost).toEqual([]);
    expect(stored.size).toBeLessThanOrEqual(sent);
  });
});
