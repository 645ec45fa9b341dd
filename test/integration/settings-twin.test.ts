/**
 * Desired settings across two gateways syncing over real TCP, with a firmware-sim device on
 * their embedded MQTT brokers (real aedes, real lmdb, the real `gateway devices set` CLI as a
 * child process). A sync round happens only when the test calls `sync`: not calling it is a
 * partition.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import { DeviceSettings, settingsHandler } from '../../firmware-sim/settings.js';
import { MqttDeviceLink } from '../../firmware-sim/transports/mqtt.js';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { toHex } from '../../protocols/index.js';
import { freePort, memoryLogger, running, tempDir, waitFor } from '../helpers/env.js';
import { gatewayCli } from '../helpers/process.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const TOKEN = 'settings-test-token-0123456789';
const dev = generateManifest({ devices: 1, prefix: 'boiler', model: 'env-1' }).devices[0]!;

interface Gw {
  readonly id: string;
  readonly dir: string;
  readonly key: Uint8Array;
  gw: Gateway;
  start(): Promise<Gateway>;
}

async function pair(): Promise<{ a: Gw; b: Gw; sync(): Promise<void> }> {
  const dirs = ['gw-a', 'gw-b'].map((id) => {
    const t = tempDir(`outpost-twin-${id}-`);
    closers.push(t.cleanup);
    return { id, dir: t.dir, key: GatewayIdentity.loadOrCreate(id, t.dir).publicKey };
  });
  const portB = await freePort();
  const make = (i: number): Gw => {
    const me = dirs[i]!;
    const other = dirs[1 - i]!;
    const sync =
      i === 1
        ? { port: portB, peers: [{ id: other.id, publicKey: toHex(other.key) }] }
        : { port: 0, peers: [{ id: other.id, publicKey: toHex(other.key), url: `tcp://127.0.0.1:${portB}` }] };
    const g: Gw = {
      ...me,
      gw: undefined as unknown as Gateway,
      async start() {
        const config = validateConfig({
          gateway: { id: me.id, dataDir: me.dir },
          mqtt: { port: 0 },
          devices: [{ id: dev.id, publicKey: dev.publicKey }],
          simulate: { devices: 0 },
          api: { enabled: true, port: 0, token: TOKEN },
          sync: { enabled: true, host: '127.0.0.1', intervalSeconds: 3600, ...sync },
        });
        const gw = await Gateway.start(config, {
          logger: memoryLogger().log,
          simulate: false,
          settings: { retryMinMs: 200, retryMaxMs: 2000, silenceMs: 2000 },
        });
        let stopped = false;
        const stop = gw.stop.bind(gw);
        gw.stop = async () => {
          if (stopped) return;
          stopped = true;
          await stop();
        };
        closers.push(() => gw.stop());
        g.gw = gw;
        return gw;
      },
    };
    return g;
  };
  const b = make(1);
  await b.start();
  const a = make(0);
  await a.start();
  return {
    a,
    b,
    sync: async () => {
      await running(a.gw, 'siblings').round(false);
      await Promise.all([a.gw.blockLog.durable(), b.gw.blockLog.durable()]);
    },
  };
}

/** The device: trusts both gateways, keeps its settings in memory, sends a reading every 200 ms on each link. */
function device(a: Gw, b: Gw) {
  const d = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
  const settings = new DeviceSettings({
    device: dev.id,
    gateways: [
      { id: a.id, publicKey: a.key },
      { id: b.id, publicKey: b.key },
    ],
  });
  const links = new Map<Gw, MqttDeviceLink>();
  let handler: (f: Uint8Array) => void = () => {};
  const attach = async (g: Gw) => {
    let link: MqttDeviceLink;
    const onFrame = settingsHandler(settings, d, (f) => link.send(f));
    handler = onFrame;
    link = new MqttDeviceLink(d, {
      brokerUrl: `mqtt://127.0.0.1:${running(g.gw, 'broker').port}`,
      onCommand: (p) => handler(p),
    });
    link.start();
    links.set(g, link);
    await waitFor(() => link.connected, 15_000, `device on ${g.id}`);
  };
  const detach = async (g: Gw) => {
    await links.get(g)?.stop();
    links.delete(g);
  };
  const timer = setInterval(() => {
    if (links.size === 0) return;
    const f = d.nextFrame();
    for (const l of links.values()) l.send(f);
  }, 200);
  closers.push(async () => {
    clearInterval(timer);
    for (const l of links.values()) await l.stop();
  });
  return { settings, attach, detach };
}

const set = async (g: Gw, ...kv: string[]) => {
  const r = await gatewayCli(['devices', 'set', dev.id, ...kv, '--data', g.dir, '--wait', '30']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(`logged for ${dev.id}`);
};
const view = (g: Gw) =>
  g.gw.settings.view(dev.id) as
    | { pending: unknown[]; desired: Record<string, { value: unknown }>; reported: Record<string, unknown> | null }
    | undefined;
const desiredValues = (g: Gw) => g.gw.settings.desired.values()[dev.id];

describe('desired settings (device twin) across siblings', () => {
  it('a setting made on gw-a during a partition reaches the device attached to gw-b once it heals; the CLI shows it in sync', async () => {
    const { a, b, sync } = await pair();
    const d = device(a, b);
    await d.attach(b);
    await set(a, 'rate=5', 'mode=eco');
    expect(desiredValues(a)).toEqual({ mode: 'eco', rate: 5 });
    expect(view(a)!.pending).toHaveLength(2);
    // Bad input: a clear error, nothing queued.
    const bad = await gatewayCli(['devices', 'set', dev.id, '9lives=1', '--data', a.dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('setting key "9lives"');
    const unknown = await gatewayCli(['devices', 'set', 'no-such-device', 'a=1', '--data', a.dir]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no device "no-such-device"');
    // Partitioned: gw-b knows nothing of it; gw-a never hears the device. Nothing reaches it.
    await new Promise((r) => setTimeout(r, 1500));
    expect(d.settings.values()).toEqual({});
    expect(b.gw.settings.view(dev.id)).toBeUndefined();
    // Healed: gw-b learns the desired settings by sync and delivers them over its own route.
    await sync();
    await waitFor(() => d.settings.get('rate') === 5 && d.settings.get('mode') === 'eco', 30_000, 'device applied');
    await waitFor(() => view(b)?.pending.length === 0, 30_000, 'gw-b sees them reported');
    // gw-a sees the device's readings (heard by gw-b) by sync: reported equals desired there too.
    await sync();
    await waitFor(() => view(a)?.pending.length === 0, 30_000, 'gw-a sees them reported');
    // The API's device view (what the dashboard card shows) agrees.
    const api = await fetch(`http://127.0.0.1:${running(a.gw, 'api').port}/api/devices/${dev.id}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const shownByApi = (await api.json()) as {
      settings: { pending: unknown[]; reported: unknown; desired: Record<string, { value: unknown; author: string }> };
    };
    expect(shownByApi.settings.pending).toEqual([]);
    expect(shownByApi.settings.reported).toEqual({ rate: 5, mode: 'eco' });
    expect(shownByApi.settings.desired.mode).toMatchObject({ value: 'eco', author: 'gw-a' });
    const shown = await gatewayCli(['devices', 'settings', dev.id, '--data', a.dir, '--json']);
    expect(shown.code).toBe(0);
    const json = JSON.parse(shown.stdout) as {
      desired: Record<string, { value: unknown }>;
      pending: unknown[];
      reported: unknown;
    };
    expect(json.pending).toEqual([]);
    expect(json.desired.rate!.value).toBe(5);
    expect(json.reported).toEqual({ rate: 5, mode: 'eco' });
  }, 120_000);

  it('two concurrent settings on gw-a and gw-b converge to the same value on both gateways and on the device', async () => {
    const { a, b, sync } = await pair();
    const d = device(a, b);
    await d.attach(a);
    await d.attach(b);
    await sync(); // enrolment and first frames on both sides, so the lamport clocks move
    await Promise.all([set(a, 'setpoint=20.5'), set(b, 'setpoint=18', 'fan=true')]);
    await sync();
    expect(desiredValues(a)).toEqual(desiredValues(b));
    const winner = desiredValues(a)!.setpoint;
    // The winner is the block with the higher (lamport, author key), whichever gateway it came from.
    const fromLog = (g: Gw) =>
      g.gw.settings.view(dev.id) as { desired: Record<string, { lamport: number; author: string }> };
    expect(fromLog(a).desired.setpoint).toEqual(fromLog(b).desired.setpoint);
    await waitFor(
      () => d.settings.get('setpoint') === winner && d.settings.get('fan') === true,
      30_000,
      'device converged',
    );
    await sync();
    await waitFor(() => view(a)?.pending.length === 0 && view(b)?.pending.length === 0, 30_000, 'both in sync');
    expect(d.settings.values()).toEqual({ setpoint: winner, fan: true });
  }, 120_000);

  it('a device offline while its setting is made, and its gateway restarted, gets it when it comes back', async () => {
    const { a, b } = await pair();
    const d = device(a, b);
    await d.attach(a);
    await set(a, 'interval=30');
    await waitFor(() => d.settings.get('interval') === 30, 30_000, 'first setting applied');
    await d.detach(a); // offline
    await set(a, 'interval=600', 'label="night"');
    expect(view(a)!.pending).toHaveLength(2);
    // The gateway restarts while the device is away: desired settings come back from the log.
    await a.gw.stop();
    await a.start();
    expect(desiredValues(a)).toEqual({ interval: 600, label: 'night' });
    expect(view(a)!.pending).toHaveLength(2);
    expect(d.settings.values()).toEqual({ interval: 30 });
    await new Promise((r) => setTimeout(r, 2500)); // longer than the silence that resets the backoff
    await d.attach(a);
    await waitFor(
      () => d.settings.get('interval') === 600 && d.settings.get('label') === 'night',
      30_000,
      'device caught up',
    );
    await waitFor(() => view(a)?.pending.length === 0, 30_000, 'reported equals desired');
  }, 120_000);
});
