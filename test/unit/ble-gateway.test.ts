/**
 * BLE pieces without a radio: the `ble` config section, advert parsing and
 * MTU chunking, backoff with jitter, and the messages for a machine without a
 * usable adapter (this CI box has no Bluetooth in its kernel), while the
 * other transports keep running.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { BleTransport } from '../../gateway/transports/ble.js';
import {
  createHciNoble,
  explainAdapterState,
  type NobleCentral,
  type NoblePeripheral,
} from '../../gateway/transports/ble-noble.js';
import type { IngestPipeline } from '../../gateway/ingest/pipeline.js';
import {
  advertisedDeviceIds,
  attPayload,
  chunkForMtu,
  encodeManufacturerId,
  NUS_SERVICE_UUID,
} from '../../protocols/index.js';
import { memoryLogger, startTestGateway, tempDir } from '../helpers/env.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('ble config (clause: enabled, max connections/attempts, backoff with jitter, scan filter)', () => {
  it('is off by default with bounded defaults', () => {
    expect(validateConfig({}).ble).toEqual({
      enabled: false,
      radio: 'hci',
      maxConnections: 10,
      maxConnecting: 1,
      connectTimeoutMs: 10_000,
      backoffMinMs: 1000,
      backoffMaxMs: 30_000,
      jitter: 0.5,
      shareSlotsAfterMs: 60_000,
      maxAdvertisers: 1000,
      forgetAdvertisersAfterMs: 60_000,
      scan: {},
    });
    const c = validateConfig({
      ble: { enabled: true, radio: 'ws://127.0.0.1:2846', hciDevice: 1, scan: { devices: ['press-01'] } },
    });
    expect(c.ble.scan.devices).toEqual(['press-01']);
  });
  it.each([
    [{ maxConnections: 0 }, 'ble.maxConnections'],
    [{ jitter: 1.5 }, 'ble.jitter'],
    [{ radio: 'usb0' }, "must be 'hci' or a ws:// URL"],
    [{ scan: { devices: ['bad id!'] } }, 'ble.scan.devices.0'],
    [{ scan: { uuid: 'x' } }, 'unknown key "uuid"'],
  ])('%j is refused naming the key', (ble, msg) => {
    expect(() => validateConfig({ ble })).toThrow(ConfigError);
    expect(() => validateConfig({ ble })).toThrow(msg);
  });
});

describe('adverts and MTU (clause: filter by enrolled device; chunk to MTU-3)', () => {
  it('finds the id in the local name or in manufacturer data', () => {
    expect(advertisedDeviceIds({ localName: 'press-01' })).toEqual(['press-01']);
    expect(
      advertisedDeviceIds({ localName: 'NUS sensor', manufacturerData: encodeManufacturerId('press-02', 0x0059) }),
    ).toEqual(['press-02']);
    expect(advertisedDeviceIds({ localName: 'a', manufacturerData: Uint8Array.of(0x59, 0x00) })).toEqual(['a']);
    expect(advertisedDeviceIds({ manufacturerData: Uint8Array.of(0x59, 0x00, 0x20, 0x21) })).toEqual([]);
  });
  it('chunks reassemble and each fits MTU − 3 (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 23, max: 517 }), (bytes, mtu) => {
        const parts = chunkForMtu(bytes, mtu);
        expect(parts.every((p) => p.length <= mtu - 3 && p.length > 0)).toBe(true);
        expect(Buffer.concat(parts)).toEqual(Buffer.from(bytes));
      }),
    );
    expect(attPayload(23)).toBe(20);
    expect(attPayload(247)).toBe(244);
  });
});

/** A stand-in central (the transport's own logic; the real noble runs in the integration tests). */
class FakeNoble extends EventEmitter {
  state = 'unknown';
  scans: unknown[] = [];
  readonly _bindings = new EventEmitter();
  startScanning(uuids: string[], dup: boolean): void {
    this.scans.push([uuids, dup]);
  }
  stopScanning(): void {}
}

function fakePeripheral(id: string, name: string): NoblePeripheral {
  const p = new EventEmitter() as unknown as NoblePeripheral & { connects: number };
  Object.assign(p, {
    id,
    address: id,
    advertisement: { localName: name, serviceUuids: [NUS_SERVICE_UUID] },
    rssi: -50,
    mtu: null,
    state: 'disconnected',
    connects: 0,
  });
  p.connect = () => void p.connects++; // never answers: the attempt times out
  p.disconnect = () => {};
  return p;
}

describe('BleTransport without a real radio (clause: clear message, setcap hint, other transports keep running; backoff with jitter, no leaked slots)', () => {
  it('this kernel has no Bluetooth: the HCI binding fails with a clear reason', () => {
    expect(() => createHciNoble()).toThrow(
      /BLE: (this kernel has no Bluetooth support|no Bluetooth adapter|not permitted|noble's HCI binding)/,
    );
  });
  it('explains adapter states, with the setcap hint for missing capabilities', () => {
    expect(explainAdapterState('unauthorized')!.message).toContain(
      'setcap cap_net_raw,cap_net_admin+eip $(readlink -f $(which node))',
    );
    expect(explainAdapterState('poweredOff')!.code).toBe('no-adapter');
    expect(explainAdapterState('unsupported')!.code).toBe('no-adapter');
    expect(explainAdapterState('resetting')).toBeUndefined();
  });
  it('an unauthorized adapter is logged once with the hint; attempts that time out back off with jitter and free their slots', async () => {
    const { log, lines } = memoryLogger('debug');
    const noble = new FakeNoble();
    const base = {
      radio: 'hci',
      maxConnections: 2,
      maxConnecting: 1,
      connectTimeoutMs: 100,
      backoffMinMs: 400,
      backoffMaxMs: 1000,
      jitter: 0.5,
      shareSlotsAfterMs: 0,
    };
    const t = BleTransport.start(
      {
        ...base,
        gatewayId: 'gw-test',
        sign: () => new Uint8Array(64),
        isEnrolled: (id) => id !== 'stranger',
        noble: noble as unknown as NobleCentral,
        random: () => 1,
      },
      {} as IngestPipeline,
      log,
    );
    cleanups.push(() => t.close());
    noble.emit('stateChange', 'unauthorized');
    noble.emit('stateChange', 'unauthorized');
    expect(lines.filter((l) => String(l.msg).includes('setcap')).length).toBe(1);
    expect(t.status().error).toContain('setcap');
    noble.emit('warning', 'Initialization of USB device failed: EPERM, Operation not permitted');
    expect(lines.filter((l) => String(l.msg).includes('setcap')).length).toBe(2);
    noble.emit('stateChange', 'poweredOn');
    expect(t.status().error).toBeUndefined();
    expect(noble.scans).toEqual([[[NUS_SERVICE_UUID], true]]);
    const a = fakePeripheral('aa', 'dev-a');
    noble.emit('discover', fakePeripheral('zz', 'stranger'));
    noble.emit('discover', a);
    expect(t.status().ignoredAdvertisements).toBe(1);
    expect(t.links.get('dev-a')!.state).toBe('connecting');
    expect(t.connections).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    const link = t.links.get('dev-a')!;
    expect(link.state).toBe('lost');
    expect(t.connections).toBe(0);
    // random() = 1 takes the whole jitter off: 400 · (1 − 0.5) = 200 ms, and only once heard again.
    expect(link.notBefore - link.since).toBeGreaterThanOrEqual(199);
    expect(link.notBefore - link.since).toBeLessThanOrEqual(202);
    noble.emit('discover', a);
    expect(link.state).toBe('lost');
    await new Promise((r) => setTimeout(r, 250));
    noble.emit('discover', a);
    expect(link.state).toBe('connecting');
    expect(lines.some((l) => String(l.msg).includes('BLE dev-a: lost (no answer within 100 ms)'))).toBe(true);
  });
  it('a gateway with BLE on and no usable radio still takes MQTT frames', async () => {
    const tmp = tempDir('outpost-ble-none-');
    cleanups.push(() => tmp.cleanup());
    const { gw, lines } = await startTestGateway(join(tmp.dir, 'data'), [], { ble: { enabled: true } });
    cleanups.push(() => gw.stop());
    expect(gw.broker).toBeDefined();
    const s = gw.status() as { ble: { error?: string } };
    expect(s.ble.error).toMatch(/^BLE: /);
    expect(lines.some((l) => l.level === 50 && String(l.msg).includes('the other transports keep running'))).toBe(true);
  });
});
