/**
 * Two gateway processes syncing through a real Mosquitto; the broker restarts; then SIGTERM:
 * each stops cleanly before a dial's 10 s idle timeout could run out (found by the fault campaign, test/chaos: a dial in progress
 * over the restarted broker waited out its 10 s idle timeout per sibling, and a graceful MQTT
 * end waited forever for acks, so a gateway took over 30 s or never stopped).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { toHex } from '../../protocols/index.js';
import { GatewayNode, Mosquitto } from '../chaos/cluster.js';
import { needs } from '../helpers/system-tools.js';
import { freePort, tempDir } from '../helpers/env.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('gateway stop with sync over a restarted broker', needs('mosquitto'), () => {
  it('SIGTERM: both exit 0 before a dial could wait out its 10 s idle timeout, after the broker restarted under their sessions', async () => {
    const { dir, cleanup } = tempDir('outpost-mq-stop-');
    cleanups.push(cleanup);
    const mosq = new Mosquitto(dir, await freePort());
    await mosq.start();
    cleanups.push(() => mosq.kill());
    const seeds = [randomBytes(32), randomBytes(32)];
    const hex = seeds.map((s) => toHex(publicKeyFromSeed(s)));
    const nodes: GatewayNode[] = [];
    for (const i of [0, 1]) {
      const dataDir = join(dir, `data-${i}`);
      mkdirSync(dataDir);
      writeFileSync(join(dataDir, 'identity.key'), toHex(seeds[i]!) + '\n', { mode: 0o600 });
      const file = join(dir, `gw-${i}.yaml`);
      const peer = `{ id: gw-${1 - i}, publicKey: "${hex[1 - i]}", url: "${mosq.url}" }`;
      writeFileSync(
        file,
        [
          `gateway: { id: gw-${i}, dataDir: ${JSON.stringify(dataDir)} }`,
          `mqtt: { port: ${await freePort()} }`,
          'api: { enabled: false }',
          `sync: { enabled: true, host: 127.0.0.1, port: ${await freePort()}, intervalSeconds: 0.3, peers: [${peer}], brokers: ["${mosq.url}"] }`,
        ].join('\n'),
      );
      nodes.push(new GatewayNode(`gw-${i}`, file, dataDir, 0));
    }
    cleanups.push(() => Promise.all(nodes.map((n) => n.kill())).then(() => undefined));
    await Promise.all(nodes.map((n) => n.start()));
    await new Promise((r) => setTimeout(r, 2000)); // a few rounds each way
    await mosq.kill();
    await new Promise((r) => setTimeout(r, 700));
    await mosq.start();
    await new Promise((r) => setTimeout(r, 2500)); // dials resume against the new broker
    // 'hung' past 8 s: below the 10 s idle timeout the bug waited out, well above a normal stop (a
    // few hundred ms), so a loaded box does not fail it.
    const codes = await Promise.all(nodes.map((n) => n.stop(8_000)));
    expect(codes).toEqual([0, 0]);
    expect(nodes.flatMap((n) => [...n.crashes, ...n.alarms])).toEqual([]);
  }, 60_000);
});
