/**
 * `devices` blocks: several devices' states of a rollout in one firmware block (the runner logs
 * a quarter of a second's states together). The body round trips through canonical CBOR and
 * bad ones are refused; a FirmwareStore folds the same rollout status whatever order the
 * blocks arrive in, whether the states came as `devices` entries or as the single-state
 * `device` blocks earlier gateways logged (still read), and equal to each device's last state
 * in the log's order (lamport, hash, then place in the block).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FirmwareStore } from '../../gateway/firmware/releases.js';
import { patchDevice, rolloutStatus } from '../../gateway/firmware/rollout.js';
import type { BlockLog } from '../../gateway/log/block-log.js';
import {
  type DeviceEntry,
  decodeFirmwareBody,
  type FirmwareBody,
  firmwareBody,
  MAX_DEVICE_ENTRIES,
} from '../../protocols/firmware-block.js';
import { UPDATE_STATES } from '../../protocols/firmware-transfer.js';
import { type Block, decodeCbor, encodeCanonical, type SignedBlock } from '../../protocols/index.js';

const DEVICES = ['d1', 'd2', 'd3', 'd4'];
const entryArb = fc.record({
  device: fc.constantFrom(...DEVICES, 'x9'),
  state: fc.constantFrom(...UPDATE_STATES),
  percent: fc.nat(100),
  reason: fc.string({ maxLength: 20 }),
  at: fc.nat(),
});

const rollout: FirmwareBody = {
  type: 'rollout',
  id: 'r1',
  digest: new Uint8Array(32).fill(7),
  devices: DEVICES,
  canary: 1,
  steps: [50, 100],
  haltPercent: 50,
  at: 1,
};

/** A durable firmware block as the log hands it to its followers. */
const durable = (body: FirmwareBody, lamport: number, hashByte: number, author = 1): SignedBlock => ({
  block: {
    kind: 'firmware',
    body: firmwareBody(body),
    author: new Uint8Array(32).fill(author),
    lamport,
  } as unknown as Block,
  bytes: new Uint8Array(0),
  hash: new Uint8Array(32).fill(hashByte),
  signature: new Uint8Array(0),
  envelope: new Uint8Array(0),
});

/** A FirmwareStore following the blocks `feed` hands it (a stand-in for the log's durable blocks, no more). */
function following(): { store: FirmwareStore; feed: (sb: SignedBlock) => void } {
  const followers: ((sb: SignedBlock) => void)[] = [];
  const log = {
    hashesOfKind: () => [][Symbol.iterator](),
    onDurableBlock: (fn: (sb: SignedBlock) => void) => {
      followers.push(fn);
      return () => {};
    },
  } as unknown as BlockLog;
  const store = new FirmwareStore(log, []).follow();
  const feed = (sb: SignedBlock): void => {
    for (const f of followers) f(sb);
  };
  return { store, feed };
}

/** A FirmwareStore that took these blocks in this order. */
function storeOf(blocks: readonly SignedBlock[]): FirmwareStore {
  const { store, feed } = following();
  for (const b of blocks) feed(b);
  return store;
}

describe('firmware devices block', () => {
  it('round trips through canonical CBOR (property); a device body decodes as before', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 40 }), (entries) => {
        const b: FirmwareBody = { type: 'devices', rollout: 'r1', entries };
        const raw = decodeCbor(encodeCanonical(firmwareBody(b)));
        expect(raw.ok && decodeFirmwareBody(raw.value)).toEqual({ ok: true, value: b });
        const one: FirmwareBody = { type: 'device', rollout: 'r1', ...entries[0]! };
        const raw1 = decodeCbor(encodeCanonical(firmwareBody(one)));
        expect(raw1.ok && decodeFirmwareBody(raw1.value)).toEqual({ ok: true, value: one });
      }),
    );
  });

  it('refuses no entries, too many, and a bad entry', () => {
    const e: DeviceEntry = { device: 'd1', state: 'offered', percent: 0, reason: '', at: 1 };
    const body = firmwareBody({ type: 'devices', rollout: 'r1', entries: [e] });
    const bad = (entries: unknown) => decodeFirmwareBody(new Map(body).set(2, entries as never));
    expect(bad([])).toMatchObject({ ok: false, error: { code: 'firmware-block/bad-field' } });
    expect(bad(Array.from({ length: MAX_DEVICE_ENTRIES + 1 }, () => ['d1', 0, 0, '', 1])).ok).toBe(false);
    expect(bad([['d1', 0, 0, '', 1]]).ok).toBe(true);
    for (const entry of [['d1', 99, 0, '', 1], ['d1', 0, 101, '', 1], ['', 0, 0, '', 1], ['d1', 0, 0, ''], 'd1'])
      expect(bad([entry]).ok, JSON.stringify(entry)).toBe(false);
    expect(() => firmwareBody({ type: 'devices', rollout: 'r1', entries: [] })).toThrow(/entries/);
  });

  it('folds to the same status in any arrival order, device and devices blocks alike, and to each device’s last state (property)', () => {
    // Blocks of states: each a devices block (several entries) or a device block (one state),
    // from two authors, with lamports that may tie across authors.
    const blockArb = fc.record({
      entries: fc.array(entryArb, { minLength: 1, maxLength: 6 }),
      single: fc.boolean(),
      lamport: fc.integer({ min: 2, max: 12 }),
      author: fc.constantFrom(1, 2),
    });
    const arb = fc
      .array(blockArb, { maxLength: 12 })
      .chain((bs) =>
        fc.tuple(fc.constant(bs), fc.shuffledSubarray(bs, { minLength: bs.length, maxLength: bs.length })),
      );
    fc.assert(
      fc.property(arb, ([bs, shuffled]) => {
        const signed = new Map(
          bs.map((b, i) => {
            const body: FirmwareBody = b.single
              ? { type: 'device', rollout: 'r1', ...b.entries[0]! }
              : { type: 'devices', rollout: 'r1', entries: b.entries };
            return [b, durable(body, b.lamport, i + 16, b.author)] as const;
          }),
        );
        const head = durable(rollout, 1, 1);
        const inOrder = storeOf([head, ...bs.map((b) => signed.get(b)!)]);
        const any = storeOf([...shuffled.map((b) => signed.get(b)!), head]);
        const a = rolloutStatus(inOrder, 'r1')!;
        const b = rolloutStatus(any, 'r1')!;
        expect(b.devices).toEqual(a.devices);
        expect(b.counts).toEqual(a.counts);
        // Each device's last state in the log's order: lamport, hash (here its index + 16), place in the block.
        const order = bs
          .map((blk, i) => ({ blk, i }))
          .sort((x, y) => x.blk.lamport - y.blk.lamport || x.i - y.i)
          .flatMap(({ blk }) => (blk.single ? blk.entries.slice(0, 1) : blk.entries));
        for (const d of DEVICES) {
          const last = order.filter((e) => e.device === d).at(-1);
          expect(a.devices.get(d)).toEqual(
            last
              ? { state: last.state, percent: last.percent, reason: last.reason, at: last.at }
              : { state: 'pending', percent: 0, reason: '', at: 0 },
          );
        }
      }),
    );
  });

  it('the runner’s fold, patched as devices blocks come, equals the fold made afresh (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(entryArb, { minLength: 1, maxLength: 6 }), { maxLength: 10 }), (blocks) => {
        const { store, feed } = following();
        feed(durable(rollout, 1, 1));
        const patched = rolloutStatus(store, 'r1')!;
        store.onBody((l) => {
          if (l.body.type !== 'devices') return;
          for (const e of l.body.entries) {
            const latest = store.latestStates('r1')?.get(e.device);
            if (latest) patchDevice(patched, e.device, latest.body);
          }
        });
        // Later blocks with lower lamports: an entry may or may not be the device's latest.
        for (const [i, entries] of blocks.entries())
          feed(durable({ type: 'devices', rollout: 'r1', entries }, 20 - i, i + 16));
        const fresh = rolloutStatus(store, 'r1')!;
        expect(patched.devices).toEqual(fresh.devices);
        expect(patched.counts).toEqual(fresh.counts);
      }),
    );
  });
});
