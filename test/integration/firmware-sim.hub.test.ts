/**
 * Devices behind hubs (firmware-sim/hub.ts) against a real aedes: 30 devices over 3
 * connections each deliver every frame exactly once on their own `up` topic, signed by
 * themselves and acked; a broker restart mid-stream loses nothing (each device's unacked
 * frames are published again on the reconnect).
 */
import { createPublicKey, verify } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HubFleet } from '../../firmware-sim/hub.js';
import { decodeBody, decodeSign1, kidToDeviceId, sigStructure, topics } from '../../protocols/index.js';
import { startBroker, type TestBroker } from './firmware-sim.broker.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const SPKI = Buffer.from('302a300506032b6570032100', 'hex');

/** Every publish the broker takes: client id, topic, payload. */
function record(b: TestBroker): { clients: Set<string>; frames: Map<string, number>; topicOk: boolean[] } {
  const seen = { clients: new Set<string>(), frames: new Map<string, number>(), topicOk: [] as boolean[] };
  b.broker.on('publish', (packet, client) => {
    if (!client) return;
    seen.clients.add(client.id);
    const m = decodeSign1(new Uint8Array(packet.payload as Buffer));
    if (!m.ok) throw new Error(m.error.message);
    const id = kidToDeviceId(m.value.kid);
    if (id === undefined) throw new Error('kid is not a device id');
    const body = decodeBody(m.value.payload);
    if (!body.ok || body.value.type !== 'reading') throw new Error('not a reading');
    seen.topicOk.push(packet.topic === topics.up(id));
    const k = `${id}:${body.value.boot}:${body.value.seq}`;
    seen.frames.set(k, (seen.frames.get(k) ?? 0) + 1);
  });
  return seen;
}

describe('firmware-sim hubs: devices sharing MQTT connections', () => {
  it('30 devices over 3 connections: every frame once, on its own topic, signed by its device, acked', async () => {
    const b = await startBroker();
    closers.push(() => b.close());
    const seen = record(b);
    const fleet = new HubFleet({
      brokerUrl: b.url,
      devices: 30,
      prefix: 'hubdev',
      perConnection: 10,
      rateHz: 20,
      maxFrames: 5,
      signer: 'node',
      seed: 7,
    });
    fleet.start();
    closers.push(() => fleet.stop(1000));
    expect(await fleet.waitFor((s) => s.acked === 150, 20_000)).toBe(true);
    expect(fleet.connections).toBe(3);
    expect(seen.clients.size).toBe(3);
    expect(seen.frames.size).toBe(150);
    expect([...seen.frames.values()].every((n) => n === 1)).toBe(true);
    expect(seen.topicOk.every(Boolean)).toBe(true);
    // The signature is the device's own: verify one frame per device under its key.
    for (const d of fleet.devices) {
      const f = d.recentlyAcked()[0]!;
      const m = decodeSign1(f.bytes);
      if (!m.ok) throw new Error(m.error.message);
      const key = createPublicKey({ key: Buffer.concat([SPKI, d.publicKey]), format: 'der', type: 'spki' });
      expect(verify(null, sigStructure(m.value.protectedBytes, m.value.payload), key, m.value.signature)).toBe(true);
    }
    const s = await fleet.stop(1000);
    expect(s).toMatchObject({ generated: 150, sent: 150, acked: 150, pending: 0, failed: 0 });
  });

  it('broker restart mid-stream: the hubs reconnect, unacked frames are published again, none missing', async () => {
    const b1 = await startBroker();
    const port = b1.port;
    const seen1 = record(b1);
    const fleet = new HubFleet({
      brokerUrl: b1.url,
      devices: 20,
      prefix: 'hubre',
      perConnection: 10,
      rateHz: 20,
      maxFrames: 20,
      signer: 'node',
      reconnectPeriodMs: 100,
      bufferCapacity: 64,
    });
    fleet.start();
    closers.push(() => fleet.stop(1000));
    expect(await fleet.waitFor((s) => s.acked >= 60, 20_000)).toBe(true);
    await b1.close();
    const b2 = await startBroker({}, port);
    closers.push(() => b2.close());
    const seen2 = record(b2);
    expect(await fleet.waitFor((s) => s.generated === 400 && s.pending === 0, 30_000)).toBe(true);
    const all = new Set([...seen1.frames.keys(), ...seen2.frames.keys()]);
    expect(all.size).toBe(400);
    expect(fleet.stats()).toMatchObject({ acked: 400, dropped: 0 });
  }, 60_000);
});
