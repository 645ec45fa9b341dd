/**
 * A device's previous-boot backlog arriving after its new boot (real gateway, real aedes over
 * TCP, real lmdb): a device reboots holding 200 unacked frames of its previous boot, sends 200
 * frames of its new boot first, then the backlog. Every frame is stored once, a replay of any
 * stored frame (either boot) is answered as a duplicate and stored nowhere, and a gateway
 * restart in between changes neither (the replay memory is persisted with the frames). Frames
 * a sibling heard and synced here are neither refused nor indexed twice when the device sends
 * them here too.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { OutcomeEvent } from '../../gateway/ingest/outcome.js';
import { toHex, topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { freePort, startTestGateway, tempDir, waitFor } from '../helpers/env.js';

const dev = testDevice('press-07');
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** Publishes frames in order on one connection (QoS 1: each PUBACK follows its outcome). */
async function publishInOrder(url: string, frames: readonly [boot: number, seq: number][]): Promise<void> {
  const c = await mqtt.connectAsync(url, { clientId: dev.id, reconnectPeriod: 0 });
  try {
    await Promise.all(
      frames.map(([b, s]) => c.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(b, s)), { qos: 1 })),
    );
  } finally {
    await c.endAsync();
  }
}

describe('replay memory keeps a previous boot backlog (MQTT, lmdb)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let gw: Gateway;
  let url: string;
  let outcomes: OutcomeEvent[];

  const start = async () => {
    ({ gw, url } = await startTestGateway(tmp.dir, [{ id: dev.id, publicKey: dev.publicKeyHex }]));
    outcomes = [];
    gw.ingest.outcomes$.subscribe((o) => outcomes.push(o));
  };
  const restart = async () => {
    await gw.stop();
    await start();
  };

  const send = async (frames: [boot: number, seq: number][]) => {
    await publishInOrder(url, frames);
    const answered = outcomes.splice(0);
    expect(answered).toHaveLength(frames.length);
    return answered.map((o) => o.outcome.status);
  };
  const held = () => [...gw.frames.query({ device: dev.id })].map((f) => `${f.boot}/${f.seq}`);

  beforeEach(async () => {
    tmp = tempDir();
    await start();
  });
  afterEach(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  for (const restartBetween of [false, true]) {
    it(`stores all 400 once and refuses every replay${restartBetween ? ', across gateway restarts' : ''}`, {
      timeout: 120_000,
    }, async () => {
      // Boot 1: 10 frames acked, then the link drops; seqs 10..209 wait unacked in the device's buffer.
      expect(await send(range(10).map((s) => [1, s]))).toEqual(Array(10).fill('stored'));
      const backlog = range(200, 10).map((s): [number, number] => [1, s]);
      const newBoot = range(200).map((s): [number, number] => [2, s]);

      // The device reboots (boot 2) and sends its new frames first…
      expect(await send(newBoot)).toEqual(Array(200).fill('stored'));
      if (restartBetween) await restart();
      // …then the previous boot's backlog: never stored, so stored now, not refused as replays.
      expect(await send(backlog)).toEqual(Array(200).fill('stored'));
      if (restartBetween) await restart();

      const all = [...range(10).map((s): [number, number] => [1, s]), ...backlog, ...newBoot];
      const keys = held();
      expect(keys).toHaveLength(410);
      expect(new Set(keys)).toEqual(new Set(all.map(([b, s]) => `${b}/${s}`)));

      // A replay of any stored frame, old boot or new, is a duplicate and stores nothing.
      expect(await send(all)).toEqual(Array(410).fill('duplicate'));
      expect(held()).toHaveLength(410);
      expect(gw.ingest.stats.rejected.get('replay') ?? 0).toBe(0);
    });
  }

  it('refuses a never-stored frame of a boot older than the last 4 (the documented limit)', {
    timeout: 60_000,
  }, async () => {
    const boots = [1, 2, 3, 4, 5];
    expect(await send(boots.map((b) => [b, 0]))).toEqual(Array(5).fill('stored'));
    await restart();
    // Boot 1 is the fifth newest: forgotten. A stored frame of it is still a duplicate.
    expect(await send([[1, 1]])).toEqual(['rejected']);
    expect(await send([[1, 0]])).toEqual(['duplicate']);
    // Boot 2, one of the last four, still takes its backlog.
    expect(await send([[2, 1]])).toEqual(['stored']);
    expect(held()).toHaveLength(6);
  });
});

describe('a previous boot backlog a sibling heard (two gateways, TCP sync)', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  it('the frames synced here are not refused when the device sends them here too, and are held once', {
    timeout: 120_000,
  }, async () => {
    const seeds = [randomBytes(32), randomBytes(32)];
    const keys = seeds.map((s) => toHex(publicKeyFromSeed(s)));
    const ports = [await freePort(), await freePort()];
    const gws: Gateway[] = [];
    const urls: string[] = [];
    for (const i of [0, 1]) {
      const tmp = tempDir();
      closers.push(() => tmp.cleanup());
      const dataDir = join(tmp.dir, 'data');
      mkdirSync(dataDir);
      writeFileSync(join(dataDir, 'identity.key'), `${toHex(seeds[i]!)}\n`, { mode: 0o600 });
      const o = 1 - i;
      const started = await startTestGateway(dataDir, [{ id: dev.id, publicKey: dev.publicKeyHex }], {
        gateway: { id: `gw-${i}`, dataDir },
        sync: {
          enabled: true,
          host: '127.0.0.1',
          port: ports[i],
          intervalSeconds: 0.3,
          peers: [{ id: `gw-${o}`, publicKey: keys[o], host: '127.0.0.1', port: ports[o] }],
        },
      });
      closers.push(() => started.gw.stop());
      gws.push(started.gw);
      urls.push(started.url);
    }
    const [sibling, here] = gws as [Gateway, Gateway];
    const statuses: string[] = [];
    here.ingest.outcomes$.subscribe((o) => statuses.push(o.outcome.status));

    // The sibling heard the first half of boot 1's backlog; this gateway hears boot 2 first.
    await publishInOrder(
      urls[0]!,
      range(100).map((s) => [1, s]),
    );
    await publishInOrder(
      urls[1]!,
      range(200).map((s) => [2, s]),
    );
    await waitFor(() => here.frames.count() === 300, 30_000, "the sibling's frames synced here");
    expect(statuses.splice(0)).toEqual(Array(200).fill('stored'));

    // Then the device's whole boot-1 backlog reaches this gateway: none refused.
    await publishInOrder(
      urls[1]!,
      range(200).map((s) => [1, s]),
    );
    expect(statuses.splice(0)).toEqual(Array(200).fill('stored'));
    // Held once each: the synced copy and this gateway's own are one row of the frames view.
    const keysHere = [...here.frames.query({ device: dev.id })].map((f) => `${f.boot}/${f.seq}`);
    expect(keysHere).toHaveLength(400);
    expect(new Set(keysHere).size).toBe(400);
    await publishInOrder(
      urls[1]!,
      range(200).map((s) => [1, s]),
    );
    expect(statuses.splice(0)).toEqual(Array(200).fill('duplicate'));
    // And the sibling converges on the same 400.
    await waitFor(() => sibling.frames.count() === 400, 30_000, 'the sibling converges');
    expect(here.ingest.stats.rejected.get('replay') ?? 0).toBe(0);
  });
});
