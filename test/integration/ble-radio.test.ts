/**
 * BLE transport end to end: firmware-sim's simulated radio (noble's websocket
 * binding protocol) → the gateway's BLE transport running the real noble
 * Noble/Peripheral/Characteristic code → ingest → lmdb, with gateway-signed
 * acks written back to RX. Each test names the issue-4 clause it checks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BleLink } from '../../gateway/transports/ble-link.js';
import { signBody } from '../../protocols/index.js';
import { waitFor } from '../helpers/env.js';
import { type BleRig, startBleRig } from '../helpers/ble.js';

const rigs: BleRig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

describe('BLE over the simulated radio, real noble in the gateway', () => {
  it('10 peripherals (MTU 23 and 247, name and manufacturer-data adverts): every frame stored once, acks verified (clause: 10 peripherals → gateway → log; notifications split at MTU 23 and 247 reassemble)', async () => {
    const rig = await startBleRig(11, {
      enrolled: 10, // the 11th advertises NUS but is not enrolled: never connected
      peripheral: (i) => ({ mtu: i % 2 === 0 ? 23 : 247, advertiseAs: i % 3 === 0 ? 'manufacturer' : 'name' }),
    });
    rigs.push(rig);
    const enrolled = rig.peripherals.slice(0, 10);
    await waitFor(
      () => rig.gw.ble!.status().devices.filter((d) => d.state === 'subscribed').length === 10,
      15_000,
      '10 subscribed',
    );
    const N = 30;
    for (let k = 0; k < N; k++) for (const [i, p] of enrolled.entries()) p.send(rig.devices[i]!.nextFrame());
    const drained = await Promise.all(enrolled.map((p) => p.drain(15_000)));
    expect(drained).toEqual(Array(10).fill(true));
    const status = rig.gw.ble!.status();
    for (const [i, p] of enrolled.entries()) {
      const id = rig.devices[i]!.id;
      const keys = rig.stored(id);
      expect(keys.length, id).toBe(N);
      expect(new Set(keys).size, id).toBe(N);
      // Frames are far longer than one ATT payload, so they really were split.
      const wire = p.stats.bytesOut / (p.stats.sent + p.stats.resent + 1);
      expect(wire).toBeGreaterThan(100);
      expect(p.stats.notifications).toBeGreaterThanOrEqual(Math.ceil(p.stats.bytesOut / (p.mtu - 3)));
      // The MTU reached noble's Peripheral (onMtu) and the gateway's RX writes fit MTU − 3.
      expect(status.devices.find((d) => d.id === id)!.mtu).toBe(p.mtu);
      expect(p.stats.maxWriteBytes).toBeLessThanOrEqual(p.mtu - 3);
      expect(p.stats.acked).toBe(N);
      expect(p.stats.badDownlink).toBe(0);
    }
    expect(enrolled.filter((p) => p.mtu === 23).length).toBe(5);
    expect(rig.peripherals[10]!.stats.sessions).toBe(0);
    expect(status.devices.map((d) => d.id)).not.toContain(rig.devices[10]!.id);
    expect(status.ignoredAdvertisements).toBeGreaterThan(0);
    expect(rig.radio.peakConnections).toBeLessThanOrEqual(10);
    // Visible in gateway status.
    const gs = rig.gw.status() as { ble: { connections: number; devices: { state: string }[] } };
    expect(gs.ble.connections).toBe(10);
    expect(gs.ble.devices.every((d) => d.state === 'subscribed')).toBe(true);
  }, 30_000);

  it('a peripheral vanishes mid-frame and returns: the partial frame is discarded, it reconnects, unacked frames are resent, nothing lost or duplicated (clause: disappears mid-frame and returns; commands written to RX)', async () => {
    const commands: Uint8Array[] = [];
    const rig = await startBleRig(1, {
      peripheral: () => ({ mtu: 23, resendAfterMs: 300, onCommand: (f) => void commands.push(f) }),
    });
    rigs.push(rig);
    const [dev, p] = [rig.devices[0]!, rig.peripherals[0]!];
    const link = (): BleLink => rig.gw.ble!.links.get(dev.id)!;
    await waitFor(() => link()?.state === 'subscribed', 10_000, 'subscribed');
    for (let k = 0; k < 5; k++) p.send(dev.nextFrame());
    expect(await p.drain(10_000)).toBe(true);
    // The next frame breaks off after 2 of its ~8 notifications: the device is out of range.
    p.cutAfterNotifications(2);
    const cut = dev.nextFrame();
    p.send(cut);
    expect(p.inRange).toBe(false);
    await waitFor(() => link().state === 'lost', 5000, 'lost');
    const deframer = link().stream.deframer.stats;
    // The partial frame was dropped at the disconnect (discarded bytes), not fed to the
    // next connection's stream, where it would have shown as a bad CRC or bad COBS.
    expect(deframer.discardedBytes).toBeGreaterThan(0);
    // While away the device keeps sampling; nothing is acked.
    for (let k = 0; k < 4; k++) p.send(dev.nextFrame());
    expect(dev.pendingCount).toBe(5);
    expect(rig.stored(dev.id).length).toBe(5);
    rig.radio.setInRange(p, true);
    await waitFor(() => link().state === 'subscribed', 10_000, 'subscribed again');
    expect(await p.drain(10_000)).toBe(true);
    const keys = rig.stored(dev.id);
    expect(keys.length).toBe(10);
    expect(new Set(keys)).toEqual(new Set(Array.from({ length: 10 }, (_, i) => `${dev.boot}:${i}`)));
    expect(deframer.badCrc + deframer.badCobs).toBe(0);
    expect(link().stats.connects).toBe(2);
    expect(p.stats.resent).toBeGreaterThanOrEqual(1);
    expect(p.stats.sessions).toBe(2);
    expect(
      rig.lines.some((l) => String(l.msg).includes(`BLE ${dev.id}: lost`) && (l.partialBytesDropped as number) > 0),
    ).toBe(true);
    expect(rig.gw.ingest.stats.snapshot()).toMatchObject({ stored: 10 });
    // A gateway-signed command goes down RX in MTU − 3 chunks and verifies at the device;
    // one for a device that is not connected is refused.
    const now = Date.now();
    const cmd = signBody(
      {
        type: 'command',
        id: new Uint8Array(16).fill(9),
        target: dev.id,
        actuator: 'relay',
        value: true,
        expires: now + 60_000,
        issued: now,
      },
      'gw-test',
      rig.gw.identity.sign,
    );
    expect(await rig.gw.ble!.send(dev.id, cmd)).toBe(true);
    await waitFor(() => commands.length === 1, 5000, 'command at the device');
    expect(Buffer.from(commands[0]!)).toEqual(Buffer.from(cmd));
    expect(p.stats.badDownlink).toBe(0);
    expect(p.stats.maxWriteBytes).toBe(20);
    expect(await rig.gw.ble!.send('nobody', cmd)).toBe(false);
  }, 30_000);

  it('the radio goes away: every link is lost, no slot stays taken, one clear error, the gateway keeps running (clause: no leaked connection slots; other transports keep running)', async () => {
    const rig = await startBleRig(3);
    rigs.push(rig);
    const ble = rig.gw.ble!;
    await waitFor(
      () => ble.status().devices.filter((d) => d.state === 'subscribed').length === 3,
      10_000,
      '3 subscribed',
    );
    const url = rig.radio.url;
    await rig.radio.close();
    await waitFor(() => ble.status().error !== undefined, 5000, 'error');
    expect(ble.status().error).toContain(`the radio at ${url} closed`);
    expect(ble.connections).toBe(0);
    expect(ble.status().devices.every((d) => d.state === 'lost')).toBe(true);
    expect(rig.lines.filter((l) => String(l.msg).includes('closed or cannot be reached')).length).toBe(1);
    expect(rig.gw.broker).toBeDefined();
    expect((rig.gw.status() as { framesStored: number }).framesStored).toBe(0);
  }, 20_000);
});
