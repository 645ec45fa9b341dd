/**
 * Durability: a gateway child process killed with SIGKILL mid-stream loses no
 * frame it had PUBACKed (the ack is sent only after the lmdb commit is flushed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../protocols/index.js';
import { Store } from '../../gateway/store/store.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const gatewayBin = new URL('../../bin/gateway.js', import.meta.url).pathname;

/** Starts `gateway start` as a child and resolves with its MQTT port once it logs "ready". */
function startGatewayProcess(configFile: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [gatewayBin, 'start', '--config', configFile, '--no-simulate'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not become ready')), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const rec = JSON.parse(line) as { event?: string; mqttPort?: number };
      if (rec.event === 'ready') {
        clearTimeout(timer);
        resolve({ child, port: rec.mqttPort! });
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited early (${code})`)));
  });
}

describe('crash safety', () => {
  const tmp = tempDir();
  afterEach(() => tmp.cleanup());

  it('keeps every PUBACKed frame across SIGKILL', async () => {
    const devices = Array.from({ length: 8 }, (_, i) => testDevice(`crash-${i}`));
    const configFile = join(tmp.dir, 'outpost.yaml');
    writeFileSync(
      configFile,
      [
        'gateway: { id: gw-crash, dataDir: ' + JSON.stringify(join(tmp.dir, 'data')) + ' }',
        'mqtt: { port: 0 }',
        'devices:',
        ...devices.map((d) => `  - { id: ${d.id}, publicKey: "${d.publicKeyHex}" }`),
      ].join('\n'),
    );
    const { child, port } = await startGatewayProcess(configFile);
    const acked = new Set<string>();
    let sent = 0;
    const clients = await Promise.all(devices.map((d) => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: d.id, reconnectPeriod: 0 })));
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
    const store = Store.open(join(tmp.dir, 'data'));
    const stored = new Set([...store.queryFrames({})].map((f) => `${f.device}/${f.seq}`));
    await store.close();
    const lost = [...acked].filter((k) => !stored.has(k));
    expect(lost).toEqual([]);
    expect(stored.size).toBeLessThanOrEqual(sent);
  });
});
