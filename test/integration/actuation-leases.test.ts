/**
 * Ownership across siblings: two gateways syncing their logs over real TCP, one
 * device (firmware-sim) heard by both over MQTT. Leases are actuation blocks that sync
 * carries; the device checks fencing tokens, so whatever the partition, only one gateway
 * drives the actuator at a time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Actuators, commandHandler } from '../../firmware-sim/actuators.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { manifestSeed } from '../../firmware-sim/manifest.js';
import { MqttDeviceLink } from '../../firmware-sim/transports/mqtt.js';
import type { ActuationSettings } from '../../gateway/actuation/start.js';
import type { Gateway } from '../../gateway/gateway.js';
import { systemClock } from '../../rules/actuation/index.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { toHex } from '../../protocols/index.js';
import { freePort, running, tempDir, waitFor } from '../helpers/env.js';
import { leaseDevice as dev, leaseGateway, leasePair, phase } from '../helpers/lease-pair.js';
import { actuatorLink } from '../helpers/examples.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const LEASE_MS = 1500;
/** The default grace: half a lease. */
const GRACE_MS = LEASE_MS / 2;

const gateway = (id: string, dir: string, sync: Record<string, unknown>, actuation: ActuationSettings = {}) =>
  leaseGateway(closers, id, dir, sync, { leaseMs: LEASE_MS, retryMinMs: 100, ...actuation });

describe('leases with fencing across two gateways', () => {
  it('a lease taken on one gateway reaches the other by sync; partitioned, the device obeys one fence holder and refuses the other', async () => {
    const { a, b, dirs, actuators, sync, heard } = await leasePair(closers, 'lease', {
      leaseMs: LEASE_MS,
      retryMinMs: 100,
    });
    await heard();

    // 1. gw-a takes the lease (fence 1) and drives the light.
    a.actuation.actuation.decide(phase(dev.id, 'green'));
    await waitFor(() => a.actuation.actuation.stats.acked === 1, 15_000, 'gw-a acked');
    expect(actuators.get('phase')).toBe('green');

    // 2. Sync carries the lease block: gw-b knows gw-a holds it and does not send.
    await sync();
    expect(b.actuation.actuation.leases.current(dev.id, 'phase', Date.now())).toMatchObject({
      holder: toHex(dirs[0].key),
      fence: 1,
    });
    b.actuation.actuation.decide(phase(dev.id, 'amber'));
    expect(b.actuation.actuation.stats.noLease).toBe(1);
    expect(actuators.get('phase')).toBe('green');

    // 3. Partition (no more sync). gw-a's lease runs out in gw-b's view, then its grace period
    //    (half a lease); gw-b heard the device after gw-a last renewed: it takes fence 2 and drives.
    await new Promise((r) => setTimeout(r, LEASE_MS + GRACE_MS + 100));
    await heard();
    b.actuation.actuation.decide(phase(dev.id, 'amber'));
    await waitFor(() => b.actuation.actuation.stats.acked === 1, 15_000, 'gw-b acked');
    expect(actuators.get('phase')).toBe('amber');
    expect(actuators.fence('phase')).toBe(2);

    // 4. gw-a, still partitioned, kept its lease (fence 1) by hearing the device: the device refuses that fence.
    a.actuation.actuation.decide(phase(dev.id, 'green'));
    await waitFor(() => a.actuation.actuation.stats.refused === 1, 15_000, 'gw-a refused');
    expect(actuators.get('phase')).toBe('amber');
    // ... and it stands back: its next decision is not sent at all.
    a.actuation.actuation.decide(phase(dev.id, 'green'));
    expect(a.actuation.actuation.stats.noLease).toBe(1);
    expect(actuators.history.map((h) => [h.gateway, h.value])).toEqual([
      ['gw-a', 'green'],
      ['gw-b', 'amber'],
    ]);
    expect(actuators.stats.refused).toMatchObject({ fenced: 1 });

    // 5. Healed: both logs hold both gateways' leases and decisions, signed by their authors.
    await waitFor(
      async () => {
        await sync();
        return a.blockLog.headsDigest() === b.blockLog.headsDigest();
      },
      10_000,
      'logs converged',
    );
    expect(a.actuation.actuation.leases.current(dev.id, 'phase', Date.now())).toMatchObject({
      holder: toHex(dirs[1].key),
      fence: 2,
    });
    expect(a.actuation.actuation.stats).toMatchObject({ acked: 1, refused: 1, noLease: 1 });
    expect(b.actuation.actuation.stats).toMatchObject({ acked: 1, noLease: 1 });
  });

  it('an ack the device sends through a sibling ends the command at the gateway that issued it (ack tracking across siblings)', async () => {
    const dirs = ['gw-a', 'gw-b'].map((id) => {
      const t = tempDir(`outpost-ack-${id}-`);
      closers.push(t.cleanup);
      return { dir: t.dir, key: GatewayIdentity.loadOrCreate(id, t.dir).publicKey };
    }) as [{ dir: string; key: Uint8Array }, { dir: string; key: Uint8Array }];
    const portB = await freePort();
    const b = await gateway('gw-b', dirs[1].dir, {
      port: portB,
      peers: [{ id: 'gw-a', publicKey: toHex(dirs[0].key) }],
    });
    const a = await gateway('gw-a', dirs[0].dir, {
      port: 0,
      peers: [{ id: 'gw-b', publicKey: toHex(dirs[1].key), url: `tcp://127.0.0.1:${portB}` }],
    });
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const actuators = new Actuators({
      device: dev.id,
      gateways: [{ id: 'gw-a', publicKey: dirs[0].key }],
      initial: { phase: 'red' },
    });
    const toB = new MqttDeviceLink(device, { brokerUrl: `mqtt://127.0.0.1:${running(b, 'broker').port}` });
    const handler = commandHandler(actuators, device, (f) => toB.send(f)); // answers only through gw-b
    const toA = new MqttDeviceLink(device, {
      brokerUrl: `mqtt://127.0.0.1:${running(a, 'broker').port}`,
      onCommand: (p) => handler(p),
    });
    for (const l of [toA, toB]) {
      l.start();
      closers.push(() => l.stop());
    }
    await waitFor(() => toA.connected && toB.connected, 15_000, 'device on both brokers');
    const f = device.nextFrame();
    toA.send(f);
    await waitFor(() => a.frames.get(dev.id, f.boot, f.seq) !== undefined, 15_000, 'heard by gw-a');
    a.actuation.actuation.decide(phase(dev.id, 'green'));
    await waitFor(
      () => actuators.get('phase') === 'green' && b.actuation.routes.transportOf(dev.id) === 'mqtt',
      15_000,
      'obeyed, ack stored at gw-b',
    );
    expect(a.actuation.actuation.stats.acked).toBe(0);
    await waitFor(
      async () => {
        await running(a, 'siblings').round(false);
        return a.actuation.actuation.stats.acked === 1;
      },
      10_000,
      'ack reached gw-a by sync',
    );
    expect(a.actuation.actuation.inFlight).toBe(0);
  });

  it('restarted with its clock a minute back, a gateway keeps its lease and issues after its last command, so the device still obeys', async () => {
    const t = tempDir('outpost-restart-');
    closers.push(t.cleanup);
    const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
    const key = GatewayIdentity.loadOrCreate('gw-a', t.dir).publicKey;
    const actuators = new Actuators({
      device: dev.id,
      gateways: [{ id: 'gw-a', publicKey: key }],
      initial: { phase: 'red' },
    });
    const run = async (clock: ActuationSettings['clock'], value: string): Promise<Gateway> => {
      const gw = await gateway('gw-a', t.dir, { enabled: false }, { leaseMs: 30_000, ...(clock && { clock }) });
      const link = actuatorLink(device, actuators, `mqtt://127.0.0.1:${running(gw, 'broker').port}`);
      closers.push(() => link.stop());
      await waitFor(() => link.connected, 15_000, 'device connected');
      const f = device.nextFrame();
      link.send(f);
      await waitFor(
        () => gw.frames.get(dev.id, f.boot, f.seq) !== undefined && gw.actuation.routes.transportOf(dev.id) === 'mqtt',
        15_000,
        'heard',
      );
      // Issued just after its last command (the clock is behind), so its expiry is counted from
      // there: a ttl longer than the clock's lag and the restart, or the device finds it expired.
      gw.actuation.actuation.decide(phase(dev.id, value, 90_000));
      await waitFor(
        () => gw.actuation.actuation.stats.acked + gw.actuation.actuation.stats.refused === 1,
        15_000,
        () => `answered (${JSON.stringify({ ...gw.actuation.status(), device: actuators.stats })})`,
      );
      await link.stop();
      return gw;
    };
    const first = await run(undefined, 'green');
    expect(first.actuation.actuation.stats.acked).toBe(1);
    await first.stop();
    const back = { ...systemClock, now: () => Date.now() - 60_000 };
    const second = await run(back, 'amber');
    expect(second.actuation.actuation.stats).toMatchObject({ acked: 1, refused: 0, leasesTaken: 0 }); // its lease from the log, same fence
    expect(actuators.history.map((h) => h.value)).toEqual(['green', 'amber']);
    expect(actuators.fence('phase')).toBe(1);
  });
});
