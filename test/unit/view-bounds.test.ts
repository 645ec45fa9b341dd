/**
 * Bounds of the operator surface's per-device memory: the readings a device view keeps per
 * device (SenML names), and the connections device activity remembers per device.
 */
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { DeviceActivity } from '../../gateway/activity.js';
import { DeviceView, MAX_READINGS_PER_DEVICE } from '../../gateway/api/device-view.js';
import type { ApiSource } from '../../gateway/api/source.js';
import type { ReadingBody } from '../../protocols/index.js';

/** The parts of the API source DeviceView reads, for one enrolled device and an empty log. */
function source(): ApiSource {
  return {
    registry: { list: () => [{ id: 'dev-a' }], get: (id: string) => (id === 'dev-a' ? { id } : undefined) },
    blockLog: { onFrames: () => () => {}, loggedDevices: () => [], loggedKeys: () => [] },
    ingest: { outcomes$: new Subject() },
    frames: { latest: () => [][Symbol.iterator]() },
    authors: { name: (h: string) => h },
  } as unknown as ApiSource;
}

const body = (seq: number, names: string[]): ReadingBody => ({
  type: 'reading',
  boot: 1,
  seq,
  time: seq,
  records: names.map((n) => ({ bn: 'dev-a:', n, v: seq })),
});

describe('DeviceView readings', () => {
  it('a device naming a new record in every frame keeps at most MAX_READINGS_PER_DEVICE, dropping the stalest', () => {
    const view = new DeviceView(source());
    for (let seq = 1; seq <= 5000; seq++) view.onFrame('dev-a', seq, 'mqtt', body(seq, ['temp', `count-${seq}`]), 'gw');
    const r = view.readings('dev-a');
    expect(r.length).toBe(MAX_READINGS_PER_DEVICE);
    // The name updated in every frame stays, with its history; the newest names stay.
    expect(r.find((x) => x.name === 'temp')?.history.length).toBe(60);
    expect(r.some((x) => x.name === 'count-5000')).toBe(true);
    expect(r.some((x) => x.name === 'count-1')).toBe(false);
    view.close();
  });
});

describe('DeviceActivity connections', () => {
  it('connections recorded after they were gone (a late ingest outcome) are swept past the cap', () => {
    const a = new DeviceActivity(1000, 100);
    let now = 0;
    for (let i = 0; i < 10_000; i++) {
      now += 10;
      a.gone(`mqtt:c${i}`);
      a.seen('dev-a', `mqtt:c${i}`, now); // the outcome lands after the disconnect
      expect(a.connections).toBeLessThanOrEqual(100);
    }
    // A live connection's device stays online, and its gone() still takes it offline.
    a.seen('dev-b', 'serial:/dev/ttyUSB0', now);
    expect(a.online(now)).toBe(2);
    a.gone('serial:/dev/ttyUSB0');
    expect(a.lastSeenAt('dev-b')).toBeUndefined();
  });
});
