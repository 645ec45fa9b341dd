/**
 * MQTT ingest over real TCP into the embedded aedes broker and a real lmdb store:
 * good frames kept exactly once, bad frames rejected, counted and logged without
 * cutting off the device's good frames.
 */
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../protocols/index.js';
import type { Gateway } from '../../gateway/gateway.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';

const publish = (c: mqtt.MqttClient, topic: string, payload: Uint8Array) =>
  c.publishAsync(topic, Buffer.from(payload), { qos: 1 });

describe('MQTT ingest (embedded aedes, lmdb)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let gw: Gateway;
  let lines: Record<string, unknown>[];
  let url: string;
  const alice = testDevice('alice');
  const bob = testDevice('bob');
  const mallory = testDevice('mallory'); // never enrolled

  beforeEach(async () => {
    tmp = tempDir();
    ({ gw, lines, url } = await startTestGateway(tmp.dir, [
      { id: alice.id, publicKey: alice.publicKeyHex },
      { id: bob.id, publicKey: bob.publicKeyHex },
    ]));
  });
  afterEach(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  // Every frame stored once and verbatim, a resend acked and stored once, a malformed frame
  // refused around good ones, an old-boot replay, a device reconnecting: the ingest acceptance
  // suite's (test/acceptance/ingest-mqtt.ts). Here, what is MQTT's own.
  it('keeps every good frame and rejects forged, unknown and mis-addressed (wrong topic) ones around them', async () => {
    const client = await mqtt.connectAsync(url, { clientId: 'alice', reconnectPeriod: 0 });
    const good: Uint8Array[] = [];
    for (let seq = 1; seq <= 50; seq++) good.push(alice.frame(1, seq));
    const forged = testDevice('alice').frame(1, 1000); // right id, wrong key
    const unknown = mallory.frame(1, 1);
    const misaddressed = bob.frame(1, 1); // bob's frame on alice's topic

    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < good.length; i++) {
      sends.push(publish(client, topics.up('alice'), good[i]!));
      if (i === 10) sends.push(publish(client, topics.up('alice'), forged));
      if (i === 20) sends.push(publish(client, topics.up('mallory'), unknown));
      if (i === 30) sends.push(publish(client, topics.up('alice'), misaddressed));
    }
    // Every publish is PUBACKed: bad frames are final, so the device may drop them.
    await Promise.all(sends);
    expect(client.connected).toBe(true); // a refusal would have cut the connection

    const stored = [...gw.frames.query({ device: 'alice' })];
    expect(stored.map((f) => f.seq)).toEqual(good.map((_, i) => i + 1));
    expect(stored.every((f, i) => Buffer.from(f.frame).equals(Buffer.from(good[i]!)))).toBe(true);
    const s = gw.ingest.stats;
    expect(s.stored).toBe(50);
    expect(Object.fromEntries(s.rejected)).toEqual({
      'bad-signature': 1,
      'unknown-device': 1,
      'device-mismatch': 1,
    });
    const rejectedLogs = lines.filter((l) => l.msg === 'frame rejected').map((l) => l.reason);
    expect(rejectedLogs.sort()).toEqual(['bad-signature', 'device-mismatch', 'unknown-device']);
    await client.endAsync();
  });

  it('accepts late and previous-boot frames never stored, and rejects a replay older than the replay memory', async () => {
    const client = await mqtt.connectAsync(url, { clientId: 'bob', reconnectPeriod: 0 });
    await publish(client, topics.up('bob'), bob.frame(2, 5000));
    await publish(client, topics.up('bob'), bob.frame(2, 4990)); // late
    await publish(client, topics.up('bob'), bob.frame(2, 10)); // 4990 behind, never stored
    await publish(client, topics.up('bob'), bob.frame(1, 7)); // older boot, never stored
    await publish(client, topics.up('bob'), bob.frame(3, 1)); // reboot
    await publish(client, topics.up('bob'), bob.frame(4, 1));
    await publish(client, topics.up('bob'), bob.frame(5, 1)); // boot 1 is now the fifth newest: forgotten
    await publish(client, topics.up('bob'), bob.frame(1, 8)); // never stored, past the memory
    await publish(client, topics.up('bob'), bob.frame(1, 7)); // stored: a duplicate, not a replay
    await publish(client, topics.up('bob'), bob.frame(2, 10)); // stored
    expect([...gw.frames.query({ device: 'bob' })].map((f) => [f.boot, f.seq])).toEqual([
      [2, 5000],
      [2, 4990],
      [2, 10],
      [1, 7],
      [3, 1],
      [4, 1],
      [5, 1],
    ]);
    expect(gw.ingest.stats.rejected.get('replay')).toBe(1);
    expect(gw.ingest.stats.duplicates).toBe(2);
    await client.endAsync();
  });

  it('refuses frames of a device revoked while the gateway runs', async () => {
    const client = await mqtt.connectAsync(url, { clientId: 'bob', reconnectPeriod: 0 });
    await publish(client, topics.up('bob'), bob.frame(1, 1));
    await gw.registry.revoke('bob');
    await publish(client, topics.up('bob'), bob.frame(1, 2));
    expect(gw.ingest.stats.rejected.get('revoked-device')).toBe(1);
    expect([...gw.frames.query({ device: 'bob' })]).toHaveLength(1);
    await client.endAsync();
  });

  it('does not forward rejected frames to subscribers', async () => {
    const sub = await mqtt.connectAsync(url, { clientId: 'observer', reconnectPeriod: 0 });
    const seen: Buffer[] = [];
    sub.on('message', (_t, p) => seen.push(p));
    await sub.subscribeAsync(topics.upWildcard, { qos: 1 });
    const pub = await mqtt.connectAsync(url, { clientId: 'alice', reconnectPeriod: 0 });
    const ok = alice.frame(1, 1);
    await publish(pub, topics.up('alice'), mallory.frame(1, 1));
    await publish(pub, topics.up('alice'), ok);
    await waitFor(() => seen.length >= 1, 5000, 'forwarded frame');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((b) => b.equals(Buffer.from(ok)))).toEqual([true]);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });
});
