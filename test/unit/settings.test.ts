/**
 * Desired settings: the log body and downlink codecs (round trips, bounds, arbitrary bytes never
 * throw), the last-writer-wins merge (any order of the same blocks gives the same values), and
 * the device side (firmware-sim/settings.ts: signature, target, expiry, version order, persistence).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceSettings } from '../../firmware-sim/settings.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { DesiredSettings } from '../../gateway/settings/desired.js';
import { SettingsDelivery } from '../../gateway/settings/delivery.js';
import { parseAssignments, parseSettingValue } from '../../gateway/cli/device-settings.js';
import {
  AckStatus,
  decodeBlock,
  decodeCbor,
  deviceIdToKid,
  encodeBlock,
  encodeCanonical,
  encodeSign1,
  ProtocolUsageError,
} from '../../protocols/index.js';
import {
  compareVersions,
  decodeSettingsBody,
  decodeSettingsMessage,
  encodeSettingsMessage,
  MAX_SETTINGS,
  type SettingValue,
  type SettingsMessage,
  type SettingsRecord,
  settingsBody,
} from '../../protocols/settings.js';
import { testTempDir } from '../helpers/env.js';

const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,31}$/);
const value: fc.Arbitrary<SettingValue> = fc.oneof(
  fc.boolean(),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }),
  fc.string({ maxLength: 64 }).map((s) => s.replace(/\p{Surrogate}/gu, 'x')),
);
const entries = fc.uniqueArray(fc.tuple(key, value), { minLength: 1, maxLength: MAX_SETTINGS, selector: (e) => e[0] });
const record: fc.Arbitrary<SettingsRecord> = fc.record({
  device: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  values: entries.map((e) => [...e].sort(([a], [b]) => (a < b ? -1 : 1))),
  at: fc.nat(),
});
const author = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('settings codecs', () => {
  it('[property] a log body round-trips through canonical CBOR and a block', () => {
    fc.assert(
      fc.property(record, (r) => {
        const decoded = decodeCbor(encodeCanonical(settingsBody(r) as never));
        if (!decoded.ok) throw new Error(decoded.error.message);
        const back = decodeSettingsBody(decoded.value);
        expect(back.ok).toBe(true);
        if (back.ok) {
          expect(back.value.device).toBe(r.device);
          expect(back.value.values.map(([k, v]) => [k, Object.is(v, -0) ? '-0' : v])).toEqual(
            r.values.map(([k, v]) => [k, Object.is(v, -0) ? '-0' : v]),
          );
        }
        // The same body in a settings block decodes to the same bytes (one encoding, one hash).
        const block = {
          version: 1,
          author: new Uint8Array(32),
          stream: 'default',
          seq: 0,
          lamport: 1,
          prev: null,
          parents: [],
          policy: 'default',
          kind: 'settings',
          body: settingsBody(r),
        } as never;
        const enc = encodeBlock(block);
        const dec = decodeBlock(enc);
        expect(dec.ok && encodeBlock(dec.value)).toEqual(enc);
      }),
      { numRuns: 300 },
    );
  });

  it('[property] a downlink message round-trips', () => {
    const msg: fc.Arbitrary<SettingsMessage> = fc.record({
      type: fc.constant('settings' as const),
      id: fc.uint8Array({ minLength: 8, maxLength: 32 }),
      target: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      issued: fc.nat(),
      expires: fc.nat(),
      entries: fc
        .uniqueArray(fc.tuple(key, value, fc.nat(), author), {
          minLength: 1,
          maxLength: MAX_SETTINGS,
          selector: (e) => e[0],
        })
        .map((es) => es.map(([k, v, lamport, a]) => ({ key: k, value: v, version: { lamport, author: a } }))),
    });
    fc.assert(
      fc.property(msg, (m) => {
        const d = decodeSettingsMessage(encodeSettingsMessage(m));
        expect(d.ok).toBe(true);
        if (d.ok) expect(d.value).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('[property] arbitrary bytes and mutated messages decode to a result, never a throw', () => {
    const good = encodeSettingsMessage({
      type: 'settings',
      id: new Uint8Array(16),
      target: 'dev-1',
      issued: 1,
      expires: 2,
      entries: [{ key: 'rate', value: 5, version: { lamport: 3, author: new Uint8Array(32) } }],
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(good.length - 1), fc.nat(255), (junk, at, byte) => {
        expect(() => decodeSettingsMessage(junk)).not.toThrow();
        const m = good.slice();
        m[at] = byte;
        const r = decodeSettingsMessage(m);
        if (!r.ok) expect(r.error.code).toMatch(/^(settings|cbor)\//);
        const c = decodeCbor(junk);
        if (c.ok) expect(() => decodeSettingsBody(c.value)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses bad keys, values, duplicates and too many settings with usage errors and results', () => {
    const at = 1;
    const bad = (values: [string, SettingValue][]) => () => settingsBody({ device: 'd', values, at });
    expect(bad([['1abc', 1]])).toThrow(ProtocolUsageError);
    expect(bad([['a', 'x'.repeat(65)]])).toThrow(/at most 64/);
    expect(bad([['a', Number.NaN]])).toThrow(/finite/);
    expect(
      bad([
        ['a', 1],
        ['a', 2],
      ]),
    ).toThrow(/twice/);
    expect(bad(Array.from({ length: 17 }, (_, i) => [`k${i}`, i] as [string, SettingValue]))).toThrow(/1\.\.16/);
    // An integer-valued double in a body has one encoding only: the integer.
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, 5);
    const r = decodeSettingsBody(
      new Map<number, never>([
        [1, 'd' as never],
        [2, [['a', b]] as never],
        [3, 1 as never],
      ]),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe('settings/bad-record');
  });

  it('CLI values: booleans, numbers, quoted and bare text; clear errors', () => {
    expect(parseSettingValue('true')).toBe(true);
    expect(parseSettingValue('-2.5e3')).toBe(-2500);
    expect(parseSettingValue('"5"')).toBe('5');
    expect(parseSettingValue('eco')).toBe('eco');
    expect(parseSettingValue('01')).toBe('01');
    expect(parseAssignments(['b=1', 'a=x'])).toEqual([
      ['a', 'x'],
      ['b', 1],
    ]);
    expect(() => parseAssignments(['rate'])).toThrow(/not key=value/);
    expect(() => parseAssignments(['9x=1'])).toThrow(/setting key "9x"/);
    expect(() => parseAssignments(['a=1', 'a=2'])).toThrow(/twice/);
  });
});

describe('last writer wins', () => {
  it('[property] any arrival order (and repeats) of the same blocks gives the same desired values', () => {
    const block = fc.record({
      device: fc.constantFrom('d1', 'd2'),
      values: fc.uniqueArray(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 3 })), {
        minLength: 1,
        maxLength: 3,
        selector: (e) => e[0],
      }),
      lamport: fc.integer({ min: 1, max: 4 }),
      author: fc.constantFrom(0, 1, 2),
    });
    fc.assert(
      fc.property(fc.array(block, { minLength: 1, maxLength: 12 }), fc.infiniteStream(fc.nat()), (blocks, rnd) => {
        const withHash = blocks.map((b, i) => ({ ...b, hash: i.toString(16).padStart(64, '0') }));
        const merge = (order: typeof withHash) => {
          const d = new DesiredSettings();
          for (const b of order) {
            const values = [...b.values].sort(([x], [y]) => (x < y ? -1 : 1));
            d.add({ device: b.device, values, at: 0 }, { lamport: b.lamport, author: Uint8Array.of(b.author) }, b.hash);
          }
          return d.values();
        };
        const shuffled = [...withHash];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = rnd.next().value % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        const once = merge(withHash);
        expect(merge(shuffled)).toEqual(once);
        expect(merge([...shuffled, ...withHash])).toEqual(once);
        // And each value is that of the greatest (lamport, author, least hash) block setting the key.
        for (const [device, keys] of Object.entries(once))
          for (const [k, v] of Object.entries(keys)) {
            const winner = withHash
              .filter((b) => b.device === device && b.values.some(([x]) => x === k))
              .sort((x, y) => y.lamport - x.lamport || y.author - x.author || (x.hash < y.hash ? -1 : 1))[0]!;
            expect(v).toBe(winner.values.find(([x]) => x === k)![1]);
          }
      }),
      { numRuns: 500 },
    );
  });

  it('orders versions by lamport, then author bytes', () => {
    const a = (n: number) => Uint8Array.of(n);
    expect(compareVersions({ lamport: 2, author: a(0) }, { lamport: 1, author: a(9) })).toBeGreaterThan(0);
    expect(compareVersions({ lamport: 1, author: a(1) }, { lamport: 1, author: a(2) })).toBeLessThan(0);
    expect(compareVersions({ lamport: 1, author: a(2) }, { lamport: 1, author: a(2) })).toBe(0);
  });
});

describe('device side and delivery', () => {
  const seeds = [randomBytes(32), randomBytes(32)];
  const gateways = [
    { id: 'gw-a', publicKey: publicKeyFromSeed(seeds[0]!) },
    { id: 'gw-b', publicKey: publicKeyFromSeed(seeds[1]!) },
  ];
  const frames: Uint8Array[] = [];
  const delivery = (i: number) =>
    new SettingsDelivery({
      gatewayId: gateways[i]!.id,
      sign: (m) => signEd25519(seeds[i]!, m),
      transport: { send: (_d, f) => (frames.push(f), true) },
      retryMinMs: 1000,
      retryMaxMs: 4000,
      ttlMs: 60_000,
    });
  const v = (lamport: number, i: number) => ({ lamport, author: gateways[i]!.publicKey });

  it('applies the highest version per key from any trusted gateway, never goes back, and persists', async () => {
    const dir = testTempDir('outpost-settings-');
    const file = join(dir, 'dev-1.settings.json');
    const dev = new DeviceSettings({ device: 'dev-1', gateways, file });
    await delivery(1).offer('dev-1', [{ key: 'rate', value: 5, version: v(10, 1) }]);
    expect(dev.handle(frames.at(-1)!, Date.now())).toMatchObject({ status: AckStatus.ok, applied: ['rate'] });
    // A stale delivery (a gateway that has not synced the newer setting) changes nothing.
    await delivery(0).offer('dev-1', [
      { key: 'rate', value: 1, version: v(9, 0) },
      { key: 'mode', value: 'eco', version: v(9, 0) },
    ]);
    const stale = dev.handle(frames.at(-1)!, Date.now());
    expect(stale).toMatchObject({ status: AckStatus.ok, applied: ['mode'], detail: 'kept newer rate' });
    expect(dev.values()).toEqual({ rate: 5, mode: 'eco' });
    expect(dev.records()).toEqual([
      { n: 'set.rate', v: 5 },
      { n: 'set.mode', vs: 'eco' },
    ]);
    // Restarted (power cycle): the same settings, the same versions.
    const again = new DeviceSettings({ device: 'dev-1', gateways, file });
    expect(again.values()).toEqual({ rate: 5, mode: 'eco' });
    expect(again.handle(frames.at(-1)!, Date.now()).applied).toEqual([]);
  });

  it('refuses forged, misaddressed and expired messages, answering with the id', async () => {
    const dev = new DeviceSettings({ device: 'dev-1', gateways: [gateways[0]!] });
    await delivery(1).offer('dev-1', [{ key: 'rate', value: 5, version: v(1, 1) }]);
    expect(dev.handle(frames.at(-1)!, Date.now()).status).toBe(AckStatus.badSignature);
    await delivery(0).offer('dev-2', [{ key: 'rate', value: 5, version: v(1, 0) }]);
    expect(dev.handle(frames.at(-1)!, Date.now())).toMatchObject({
      status: AckStatus.rejected,
      detail: 'addressed to dev-2',
    });
    await delivery(0).offer('dev-1', [{ key: 'rate', value: 5, version: v(1, 0) }]);
    const late = dev.handle(frames.at(-1)!, Date.now() + 120_000);
    expect(late.status).toBe(AckStatus.expired);
    expect(late.id).toBeInstanceOf(Uint8Array);
    // A command (not a settings message) signed by the gateway is no settings message.
    const cmd = encodeSign1({ kid: deviceIdToKid('gw-a'), payload: Uint8Array.of(0xa0) }, (m) =>
      signEd25519(seeds[0]!, m),
    );
    expect(dev.handle(cmd, Date.now()).status).toBe(AckStatus.rejected);
    expect(dev.values()).toEqual({});
  });

  it('backs off between resends, up to the maximum, and starts over on reset', async () => {
    let now = 0;
    const sent: number[] = [];
    const d = new SettingsDelivery({
      gatewayId: 'gw-a',
      sign: (m) => signEd25519(seeds[0]!, m),
      transport: { send: () => (sent.push(now), true) },
      retryMinMs: 1000,
      retryMaxMs: 4000,
      ttlMs: 60_000,
      now: () => now,
    });
    const e = [{ key: 'rate', value: 5, version: v(1, 0) }];
    for (now = 0; now <= 20_000; now += 100) await d.offer('dev-1', e);
    expect(sent).toEqual([0, 1000, 3000, 7000, 11_000, 15_000, 19_000]);
    d.reset('dev-1');
    await d.offer('dev-1', e);
    expect(sent.at(-1)).toBe(now);
  });
});
