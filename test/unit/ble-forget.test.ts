/**
 * AdvertiserMemory over noble's HCI-binding shapes (the simulated radio in
 * test/integration/ble-advertisers.test.ts covers the websocket binding):
 * per-uuid address maps and the gap's per-address discoveries are bounded,
 * and a peripheral that is connected or kept is never forgotten.
 */
import { describe, expect, it } from 'vitest';
import { AdvertiserMemory } from '../../gateway/transports/ble-forget.js';
import type { NobleCentral } from '../../gateway/transports/ble-noble.js';

type Dict = Record<string, unknown>;

function fakeNoble() {
  const n = {
    _peripherals: {} as Record<string, { state: string; address: string }>,
    _services: {} as Dict,
    _characteristics: {} as Dict,
    _descriptors: {} as Dict,
    _discoveredPeripheralUUids: {} as Dict,
    _bindings: {
      _addresses: {} as Dict,
      _addresseTypes: {} as Dict,
      _connectable: {} as Dict,
      scannable: {} as Dict,
      _gap: { _discoveries: {} as Dict },
    },
  };
  /** What noble and its HCI binding record for one report. */
  const hear = (i: number, state = 'disconnected') => {
    const address = `aa:bb:cc:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    const uuid = address.replaceAll(':', '');
    n._bindings._gap._discoveries[address] = {};
    n._bindings._addresses[uuid] = address;
    n._bindings._addresseTypes[uuid] = 'random';
    n._bindings._connectable[uuid] = true;
    n._bindings.scannable[uuid] = false;
    n._peripherals[uuid] = { state, address };
    for (const m of [n._services, n._characteristics, n._descriptors, n._discoveredPeripheralUUids]) m[uuid] = {};
    return uuid;
  };
  return { n, hear, noble: n as unknown as NobleCentral };
}

describe('AdvertiserMemory', () => {
  it('caps noble’s maps, the HCI binding’s and the gap’s at max; keeps kept and connected peripherals', () => {
    const { n, hear, noble } = fakeNoble();
    const mem = new AdvertiserMemory(noble, 50, 60_000);
    const kept = hear(0);
    const connected = hear(1, 'connected');
    mem.heardNow(kept, 0, 1);
    mem.heardNow(connected, 0, 1);
    let last = '';
    for (let i = 2; i < 2000; i++) {
      const uuid = hear(i);
      last = uuid;
      if (mem.heardNow(uuid, i, 1)) mem.sweep(i, new Set([kept]));
      // Phones without the scanned service reach only the gap.
      n._bindings._gap._discoveries[`ff:00:00:00:${i >> 8}:${i & 0xff}`] = {};
      expect(mem.size).toBeLessThanOrEqual(51);
    }
    mem.sweep(2000, new Set([kept]));
    for (const m of [n._peripherals, n._services, n._discoveredPeripheralUUids, n._bindings._addresses])
      expect(Object.keys(m).length).toBeLessThanOrEqual(51);
    expect(Object.keys(n._bindings._gap._discoveries).length).toBeLessThanOrEqual(50);
    expect(n._peripherals[kept]).toBeDefined();
    expect(n._peripherals[connected]).toBeDefined();
    expect(n._bindings._gap._discoveries[n._peripherals[connected]!.address]).toBeDefined();
    // The most recently heard stay.
    expect(n._peripherals[last]).toBeDefined();
  });

  it('forgets an advertiser not heard for forgetAfterMs, but not one that is connecting', () => {
    const { n, hear, noble } = fakeNoble();
    const mem = new AdvertiserMemory(noble, 1000, 1000);
    const quiet = hear(1);
    const connecting = hear(2, 'connecting');
    mem.heardNow(quiet, 0, 0);
    mem.heardNow(connecting, 0, 0);
    mem.sweep(999, new Set());
    expect(mem.size).toBe(2);
    mem.sweep(1000, new Set());
    expect(n._peripherals[quiet]).toBeUndefined();
    expect(n._bindings._addresses[quiet]).toBeUndefined();
    expect(n._peripherals[connecting]).toBeDefined();
    expect(mem.forgotten).toBe(1);
  });
});
