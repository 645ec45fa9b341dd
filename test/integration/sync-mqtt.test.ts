/**
 * Sync over MQTT (gateway/sync/mqtt.ts): two gateways syncing through one's embedded aedes
 * (config `url: mqtt://…`); an unknown gateway refused by the broker and by the signed challenge, and a client that is
 * not a sibling neither speaks nor hears on the sync topics; a connection cut mid-exchange
 * loses nothing and the next exchange converges. Convergence, partitions, policies and restarts
 * through the embedded broker and through Mosquitto are the sync acceptance suite's
 * (test/acceptance/sync-mqtt-embedded.ts, sync-mosquitto.ts).
 */
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import type { Gateway } from '../../gateway/gateway.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { LinkError } from '../../gateway/sync/link.js';
import { clientBus, syncOverMqtt } from '../../gateway/sync/mqtt.js';
import { encodeAuthMessage, type FrameEntry, syncTopic, toHex } from '../../protocols/index.js';
import { frameEntries, testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';

const dev = testDevice('dev-mq');
const devices = [{ id: dev.id, publicKey: dev.publicKeyHex }];
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const frames = (boot: number, n: number): FrameEntry[] => frameEntries(dev, boot, n);

/** A data dir with its gateway identity created up front, so siblings can name its key. */
function dataDir(id: string): { dir: string; key: Uint8Array; hex: string } {
  const { dir, cleanup } = tempDir(`outpost-mq-${id}-`);
  closers.push(cleanup);
  const key = GatewayIdentity.loadOrCreate(id, dir).publicKey;
  return { dir, key, hex: toHex(key) };
}

const logs = new Map<Gateway, Record<string, unknown>[]>();
async function gateway(id: string, d: { dir: string }, sync: Record<string, unknown>): Promise<Gateway> {
  const { gw, lines } = await startTestGateway(d.dir, devices, {
    gateway: { id, dataDir: d.dir },
    sync: { enabled: true, host: '127.0.0.1', port: 0, intervalSeconds: 3600, ...sync },
  });
  closers.push(() => gw.stop());
  logs.set(gw, lines);
  return gw;
}

async function converge(a: Gateway, b: Gateway): Promise<void> {
  await waitFor(
    async () => {
      await running(a, 'siblings').round(false);
      return a.blockLog.headsDigest() === b.blockLog.headsDigest();
    },
    15_000,
    'heads digests equal',
  );
  // The responder applies as blocks arrive; the frames view reads what is committed.
  await Promise.all([a.blockLog.durable(), b.blockLog.durable()]);
}

describe('sync over MQTT', () => {
  it("two gateways sync through one gateway's embedded aedes; the unknown and the unauthenticated are kept out", async () => {
    const [da, db] = [dataDir('gw-a'), dataDir('gw-b')];
    const b = await gateway('gw-b', db, { peers: [{ id: 'gw-a', publicKey: da.hex }] });
    const url = `mqtt://127.0.0.1:${running(b, 'broker').port}`;
    const a = await gateway('gw-a', da, { peers: [{ id: 'gw-b', publicKey: db.hex, url }] });
    for (let k = 0; k < 4; k++) a.blockLog.appendFrames(frames(1 + k, 20));
    for (let k = 0; k < 3; k++) b.blockLog.appendFrames(frames(100 + k, 20));
    await Promise.all([a.blockLog.durable(), b.blockLog.durable()]);

    // A client that is not a sibling subscribes to every sync topic: it must hear nothing.
    const snoop = await mqtt.connectAsync(url, { clientId: 'snoop', reconnectPeriod: 0 });
    closers.push(() => snoop.endAsync());
    const heard: string[] = [];
    snoop.on('message', (t) => heard.push(t));
    await snoop.subscribeAsync('#', { qos: 1 });

    await converge(a, b);
    expect([...b.blockLog.frameView()]).toHaveLength(140);
    // The dial loop's own round may be the one that synced (ours then returns at once): wait for its report.
    await waitFor(() => running(a, 'siblings').status()[0]!.applied === 4, 5000, 'the round to report');
    expect(running(a, 'siblings').status()[0]).toMatchObject({ id: 'gw-b', applied: 4 });
    expect(heard.filter((t) => t.startsWith('outpost/v1/sync/'))).toEqual([]);

    // Equal now: one probe each way.
    const bus = await clientBus(url, {
      publicKey: da.key,
      sign: (m) => GatewayIdentity.loadOrCreate('gw-a', da.dir).sign(m),
    });
    closers.push(() => bus.close());
    const again = await syncOverMqtt(bus, db.key, {
      log: a.blockLog,
      identity: { publicKey: da.key, sign: GatewayIdentity.loadOrCreate('gw-a', da.dir).sign },
      peers: [db.key],
      probe: true,
    });
    expect(again.stats).toMatchObject({ equal: true, messagesSent: 1, messagesReceived: 1 });

    // An unknown gateway cannot log in to B's broker as a sync sibling...
    const sc = randomBytes(32);
    const c = { publicKey: publicKeyFromSeed(sc), sign: (m: Uint8Array) => signEd25519(sc, m) };
    await expect(clientBus(url, c)).rejects.toThrow();
    // ...nor claim A's key without A's signature.
    await expect(clientBus(url, { publicKey: da.key, sign: c.sign })).rejects.toThrow();
    // A plain client publishing on B's sync topics is dropped: no answer ever comes.
    const session = 'abcdef0123456789';
    const replies: string[] = [];
    const rogue = await mqtt.connectAsync(url, { clientId: 'rogue', reconnectPeriod: 0 });
    closers.push(() => rogue.endAsync());
    rogue.on('message', (t) => replies.push(t));
    await rogue.subscribeAsync(syncTopic(db.hex, session, 'r'), { qos: 1 });
    await rogue.publishAsync(
      syncTopic(db.hex, session, 'i'),
      Buffer.from(encodeAuthMessage({ type: 'auth-hello', publicKey: c.publicKey, nonce: randomBytes(32) })),
      { qos: 1 },
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(replies).toEqual([]);
    const msgs = logs.get(b)!.map((l) => String(l.msg));
    expect(msgs.filter((m) => m.startsWith('sync login refused'))).toHaveLength(2);
    expect(msgs).toContain('publish to a sync topic by a client that is not a sibling dropped');
  });

  it('a gateway allowed on the broker but not a sibling of the responder is refused by the signed challenge', async () => {
    const [da, db, dc] = [dataDir('gw-a'), dataDir('gw-b'), dataDir('gw-c')];
    // B lets C's key log in to its broker (C is a sync peer entry) but the responder check is the same list,
    // so to test the end-to-end refusal, C dials A's key through B's broker: A is not listening there.
    const b = await gateway('gw-b', db, {
      peers: [
        { id: 'gw-a', publicKey: da.hex },
        { id: 'gw-c', publicKey: dc.hex },
      ],
    });
    const url = `mqtt://127.0.0.1:${running(b, 'broker').port}`;
    const cId = GatewayIdentity.loadOrCreate('gw-c', dc.dir);
    const a = await gateway('gw-a', da, { peers: [{ id: 'gw-b', publicKey: db.hex, url }], brokers: [url] });
    // A answers on B's broker (brokers:), and A knows only B: C is an unknown gateway to A.
    const bus = await clientBus(url, cId);
    closers.push(() => bus.close());
    const err = await syncOverMqtt(bus, da.key, {
      log: b.blockLog,
      identity: cId,
      peers: [da.key],
      idleTimeoutMs: 5000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkError);
    expect((err as LinkError).code).toBe('refused');
    expect(a.blockLog.blockCount()).toBe(0);
  });

  it('a connection cut mid-exchange loses nothing; the next exchange converges', async () => {
    const [da, db] = [dataDir('gw-a'), dataDir('gw-b')];
    const b = await gateway('gw-b', db, { peers: [{ id: 'gw-a', publicKey: da.hex }] });
    const url = `mqtt://127.0.0.1:${running(b, 'broker').port}`;
    const aId = GatewayIdentity.loadOrCreate('gw-a', da.dir);
    const a = await gateway('gw-a', da, { peers: [{ id: 'gw-b', publicKey: db.hex }] }); // no address: we dial by hand
    for (let k = 0; k < 40; k++) b.blockLog.appendFrames(frames(1 + k, 50));
    await b.blockLog.durable();
    const log = a.blockLog;
    const origApply = log.apply.bind(log);
    let applied = 0;
    const bus = await clientBus(url, aId);
    log.apply = (env) => {
      const r = origApply(env);
      if (++applied === 5) void bus.close(); // the connection goes away mid-exchange
      return r;
    };
    const first = await syncOverMqtt(bus, db.key, { log, identity: aId, peers: [db.key], idleTimeoutMs: 5000 }).catch(
      (e: unknown) => e,
    );
    log.apply = origApply;
    await log.durable();
    expect(first).toBeInstanceOf(LinkError);
    const partial = log.blockCount();
    expect(partial).toBeGreaterThanOrEqual(5);
    expect(partial).toBeLessThan(41);
    const bus2 = await clientBus(url, aId);
    closers.push(() => bus2.close());
    const r = await syncOverMqtt(bus2, db.key, { log, identity: aId, peers: [db.key] });
    expect(r.stats.rejected).toEqual([]);
    // The MQTT link runs the same compressed framing as TCP (link.ts): fewer bytes than the messages.
    expect(r.deflate).toBe(true);
    expect(r.linkBytes.received).toBeLessThan(r.stats.bytesReceived);
    expect(log.blockCount()).toBe(41);
    expect(log.headsDigest()).toBe(b.blockLog.headsDigest());
  });

  // Converging over a `tcp://` peer url is the sync acceptance suite's (test/acceptance/sync-tcp.ts).
  it('peers take url tcp://host:port as well as host/port; a malformed url or both forms are config errors', () => {
    const db = { hex: toHex(publicKeyFromSeed(randomBytes(32))) };
    const cfg =
      (peer: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      () =>
        validateConfig({
          gateway: { id: 'gw-x', dataDir: '/tmp/x' },
          sync: { peers: [{ id: 'gw-b', publicKey: db.hex, ...peer }], ...extra },
        });
    expect(cfg({ url: 'http://10.0.0.1:80' })).toThrow(ConfigError);
    expect(cfg({ url: 'mqtt://broker' })).toThrow(ConfigError);
    expect(cfg({ url: 'tcp://10.0.0.1:7878', host: '10.0.0.1', port: 7878 })).toThrow(ConfigError);
    expect(cfg({}, { brokers: ['tcp://10.0.0.1:1883'] })).toThrow(ConfigError);
    expect(cfg({ url: 'mqtt://broker.site:1883' }, { brokers: ['mqtt://broker.site:1883'] })()).toMatchObject({
      sync: { peers: [{ url: 'mqtt://broker.site:1883' }], brokers: ['mqtt://broker.site:1883'] },
    });
    expect(cfg({ host: '10.0.0.1', port: 7878 })()).toMatchObject({
      sync: { peers: [{ host: '10.0.0.1', port: 7878 }] },
    });
  });
});
