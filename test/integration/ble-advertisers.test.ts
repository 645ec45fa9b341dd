/**
 * Bounded memory among strangers: thousands of advertisers that are not
 * enrolled devices (phones and tags with rotating random addresses) come and
 * go over the simulated radio while enrolled devices stream frames; the
 * gateway's advertiser memory and real noble's per-peripheral maps stay under
 * the cap, are emptied of the strangers once they are quiet, and the enrolled
 * devices keep every frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RadioPeripheral } from '../../firmware-sim/transports/ble-radio.js';
import { running, waitFor } from '../helpers/env.js';
import { type BleRig, startBleRig } from '../helpers/ble.js';

const NUS = '6e400001b5a3f393e0a9e50e24dcca9e';

/** An advertiser carrying NUS under a name that is no enrolled device; never accepts a connection's data. */
class Stranger implements RadioPeripheral {
  readonly uuid: string;
  readonly address: string;
  readonly mtu = 23;
  readonly rssi = -80;
  inRange = true;
  readonly subscribed = false;
  onCut: (() => void) | undefined;
  constructor(index: number) {
    const b = [0xd0, 0x5e, (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff, 0x02];
    this.address = b.map((x) => x.toString(16).padStart(2, '0')).join(':');
    this.uuid = this.address.replaceAll(':', '');
  }
  advertisement() {
    return { localName: `tag-${this.uuid}`, serviceUuids: [NUS] };
  }
  subscribe(): void {}
  unsubscribe(): void {}
  onWrite(): void {}
}

const rigs: BleRig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

describe('BLE advertiser memory', () => {
  it('5000 strangers over a run: ours and noble’s maps stay under maxAdvertisers, empty once they are quiet; enrolled devices keep streaming', async () => {
    const MAX = 100;
    const rig = await startBleRig(3, { ble: { maxAdvertisers: MAX, forgetAdvertisersAfterMs: 1000 } });
    rigs.push(rig);
    const ble = running(rig.gw, 'ble');
    await waitFor(
      () => ble.status().devices.filter((d) => d.state === 'subscribed').length === 3,
      15_000,
      'subscribed',
    );

    let peakOurs = 0;
    let peakNoble = 0;
    let batch: Stranger[] = [];
    let sent = 0;
    for (let round = 0; round < 50; round++) {
      for (const s of batch) rig.radio.setInRange(s, false);
      batch = Array.from({ length: 100 }, () => rig.radio.attach((i) => new Stranger(i)));
      for (const [i, p] of rig.peripherals.entries()) p.send(rig.devices[i]!.nextFrame());
      sent++;
      await new Promise((r) => setTimeout(r, 60));
      const sizes = ble.advertisers!.nobleSizes();
      peakOurs = Math.max(peakOurs, ble.advertisers!.size);
      peakNoble = Math.max(peakNoble, sizes.peripherals, sizes.discovered, sizes.bindings);
    }
    for (const s of batch) rig.radio.setInRange(s, false);
    const heardOf = ble.status().ignoredAdvertisements;
    expect(heardOf).toBeGreaterThan(4000); // the strangers really reached noble and the transport
    // Enrolled links (3) are kept on top of the cap; one hearing may be in before its sweep.
    expect(peakOurs).toBeLessThanOrEqual(MAX + 3 + 1);
    expect(peakNoble).toBeLessThanOrEqual(MAX + 3 + 1);
    expect(ble.status().forgottenAdvertisers).toBeGreaterThan(4000);

    // Quiet strangers are forgotten after forgetAdvertisersAfterMs: only the enrolled remain.
    await waitFor(() => ble.advertisers!.nobleSizes().peripherals <= 3, 10_000, 'strangers forgotten in noble');
    expect(ble.advertisers!.size).toBeLessThanOrEqual(3);
    expect(ble.advertisers!.nobleSizes().discovered).toBeLessThanOrEqual(3);
    expect(ble.advertisers!.nobleSizes().bindings).toBeLessThanOrEqual(3);

    // The enrolled devices never lost their links and every frame arrived once.
    const drained = await Promise.all(rig.peripherals.map((p) => p.drain(15_000)));
    expect(drained).toEqual([true, true, true]);
    for (const d of rig.devices) {
      const keys = rig.stored(d.id);
      expect(keys.length, d.id).toBe(sent);
      expect(new Set(keys).size, d.id).toBe(sent);
    }
    expect(ble.status().devices.every((d) => d.state === 'subscribed')).toBe(true);
  }, 40_000);
});
