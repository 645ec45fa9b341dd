/**
 * firmware-sim/transports/mqtt-qos1.ts against a real aedes: frames written as whole QoS 1
 * PUBLISH packets beside mqtt.js arrive once each, byte for byte, on their topic; each `done`
 * runs once, on its PUBACK; mqtt.js's own subscribe on the same connection is unharmed (ids
 * from its allocator) and its store holds nothing of ours; a close fails what still waits.
 * Through `connectQos1` our PUBACKs are taken out of the reads (puback-tap.ts): mqtt.js never
 * parses one, while its own publish, subscribe and the messages it receives go on as before,
 * also after a reconnect.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { connectQos1, encodeTopic, Qos1Publisher } from '../../firmware-sim/transports/mqtt-qos1.js';
import { startBroker } from './firmware-sim.broker.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function connect(url: string, id: string): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId: id, clean: true, reconnectPeriod: 0, log: () => {} });
  closers.push(() => new Promise<void>((r) => client.end(true, () => r())));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/** A broker and a client with our PUBACK tap on every connection (`connectQos1`), both closed after the test. */
async function tapped(clientId: string, reconnectPeriod: number) {
  const b = await startBroker();
  closers.push(() => b.close());
  const c = connectQos1(b.url, { clientId, clean: true, reconnectPeriod, log: () => {} });
  closers.push(() => new Promise<void>((r) => c.client.end(true, () => r())));
  return { ...c, url: b.url };
}

describe('Qos1Publisher', () => {
  it('publishes whole QoS 1 packets beside mqtt.js: each once, byte for byte, done once on its PUBACK', async () => {
    const b = await startBroker();
    closers.push(() => b.close());
    const got: { topic: string; qos: number; payload: Buffer }[] = [];
    b.broker.on('publish', (p, c) => c && got.push({ topic: p.topic, qos: p.qos, payload: Buffer.from(p.payload) }));
    const client = await connect(b.url, 'q1-dev');
    const pub = new Qos1Publisher(client);
    const topics = [encodeTopic('outpost/dev-a/up'), encodeTopic('outpost/dév-b/up')];
    const n = 300;
    const payloads = Array.from({ length: n }, (_, i) => new Uint8Array(i % 2 === 0 ? 20 : 200).fill(i & 0xff));
    const done = new Array<number>(n).fill(0);
    const errors: unknown[] = [];
    let subacked = false;
    pub.corked(() => {
      for (let i = 0; i < n; i++) {
        if (i === 150) client.subscribe('outpost/+/cmd', { qos: 1 }, (err) => (subacked = !err));
        pub.publish(topics[i % 2]!, payloads[i]!, (err) => {
          done[i]!++;
          if (err) errors.push(err);
        });
      }
    });
    await expect.poll(() => done.every((d) => d === 1) && subacked, { timeout: 10_000 }).toBe(true);
    expect(errors).toEqual([]);
    expect(pub.inFlight).toBe(0);
    expect(got).toHaveLength(n);
    for (let i = 0; i < n; i++) {
      expect(got[i]!.topic).toBe(i % 2 === 0 ? 'outpost/dev-a/up' : 'outpost/dév-b/up');
      expect(got[i]!.qos).toBe(1);
      expect(new Uint8Array(got[i]!.payload)).toEqual(payloads[i]);
    }
    expect(Object.keys(client.outgoing)).toEqual([]);
  });

  it('a close before the PUBACK fails what waits, once each; after it nothing goes out', async () => {
    // The broker holds every publish on `held/...` unanswered (no PUBACK) until the test ends.
    const b = await startBroker({
      authorizePublish: (_c, p, cb) => (p.topic.startsWith('held/') ? undefined : cb(null)),
    });
    closers.push(() => b.close());
    const client = await connect(b.url, 'q1-held');
    const pub = new Qos1Publisher(client);
    const results: (Error | undefined)[][] = [[], [], []];
    for (let i = 0; i < 3; i++) pub.publish(encodeTopic('held/x'), new Uint8Array([i]), (err) => results[i]!.push(err));
    await new Promise((r) => setTimeout(r, 200));
    expect(pub.inFlight).toBe(3);
    expect(results.every((r) => r.length === 0)).toBe(true);
    client.stream.destroy();
    await expect.poll(() => results.every((r) => r.length === 1), { timeout: 5000 }).toBe(true);
    expect(results.every((r) => r[0] instanceof Error)).toBe(true);
    expect(pub.inFlight).toBe(0);
    const late: (Error | undefined)[] = [];
    pub.publish(encodeTopic('up/x'), new Uint8Array([9]), (err) => late.push(err));
    expect(late).toHaveLength(1);
    expect(late[0]).toBeInstanceOf(Error);
  });

  it('connectQos1: our PUBACKs never reach mqtt.js; its own publishes, subscribes and messages do, across a reconnect', async () => {
    const { client, publisher: pub } = await tapped('q1-tap', 50);
    const seen = { pubacks: 0, messages: [] as string[] };
    client.on('packetreceive', (p) => p.cmd === 'puback' && seen.pubacks++);
    client.on('message', (topic, payload) => seen.messages.push(`${topic}=${payload.toString()}`));
    for (let round = 0; round < 2; round++) {
      await expect.poll(() => client.connected, { timeout: 5000 }).toBe(true);
      await new Promise<void>((resolve, reject) =>
        client.subscribe(`echo/${round}`, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
      );
      const done = new Array<number>(200).fill(0);
      pub.corked(() => {
        for (let i = 0; i < 200; i++) pub.publish(encodeTopic('outpost/tap/up'), new Uint8Array([i]), () => done[i]!++);
      });
      // mqtt.js's own QoS 1 publish on the same connection: its PUBACK is passed on to it.
      await new Promise<void>((resolve, reject) =>
        client.publish(`echo/${round}`, `hello ${round}`, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
      );
      await expect.poll(() => done.every((d) => d === 1), { timeout: 5000 }).toBe(true);
      await expect.poll(() => seen.messages.length, { timeout: 5000 }).toBe(round + 1);
      expect(seen.pubacks).toBe(round + 1); // mqtt.js's own, none of ours
      expect(pub.inFlight).toBe(0);
      if (round > 0) break;
      client.stream.destroy(); // the next connection's stream is tapped too
      await expect.poll(() => client.connected, { timeout: 5000 }).toBe(false);
    }
    expect(seen.messages).toEqual(['echo/0=hello 0', 'echo/1=hello 1']);
  });

  it('connectQos1 over TCP: messages larger than a read and faster than mqtt.js parses them arrive whole and in order, beside our publishes', async () => {
    // The tapped TCP connection reads into one shared buffer (node's onread): what is passed on to
    // mqtt.js is copied, and when its parser falls behind (one packet a tick) reading pauses.
    const { client, publisher: pub, url } = await tapped('q1-big', 0);
    await expect.poll(() => client.connected, { timeout: 5000 }).toBe(true);
    await new Promise<void>((resolve, reject) =>
      client.subscribe('bulk/#', { qos: 0 }, (err) => (err ? reject(err) : resolve())),
    );
    const got: Buffer[] = [];
    client.on('message', (_topic, payload) => got.push(Buffer.from(payload)));
    const sender = await connect(url, 'q1-sender');
    const n = 120;
    const body = (i: number): Buffer => Buffer.alloc(i % 3 === 0 ? 150_000 : 20_000, i & 0xff);
    for (let i = 0; i < n; i++) sender.publish(`bulk/${i}`, body(i), { qos: 0 });
    const done = new Array<number>(300).fill(0);
    for (let i = 0; i < 300; i++)
      pub.publish(encodeTopic('outpost/big/up'), new Uint8Array([i & 0xff]), () => done[i]!++);
    await expect.poll(() => got.length, { timeout: 15_000 }).toBe(n);
    await expect.poll(() => done.every((d) => d === 1), { timeout: 5000 }).toBe(true);
    for (let i = 0; i < n; i++) expect(got[i]!.equals(body(i))).toBe(true);
    expect(pub.inFlight).toBe(0);
  });
});
