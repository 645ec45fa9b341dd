/**
 * Rollout controls and offer windows: the control and window fields of firmware blocks round
 * trip (and bad ones are refused); pause, resume and abort fold to the same state whatever
 * order the blocks arrived in; a fold patched device block by device block is the fold made
 * afresh; "is now inside the window" across midnight.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeviceBody, type FirmwareStore, type Logged, laterThan } from '../../gateway/firmware/releases.js';
import { foldControls, patchDevice, rolloutStatus } from '../../gateway/firmware/rollout.js';
import { formatOfferWindow, inOfferWindow, parseOfferWindow } from '../../gateway/firmware/window.js';
import {
  CONTROL_ACTIONS,
  type ControlAction,
  decodeFirmwareBody,
  type FirmwareBody,
  firmwareBody,
} from '../../protocols/firmware-block.js';
import { decodeCbor, encodeCanonical } from '../../protocols/index.js';

type Control = Extract<FirmwareBody, { type: 'control' }>;
type Rollout = Extract<FirmwareBody, { type: 'rollout' }>;

const rollout = (window?: { start: number; end: number }): Rollout => ({
  type: 'rollout',
  id: 'r1',
  digest: new Uint8Array(32).fill(7),
  devices: ['d1', 'd2', 'd3'],
  canary: 1,
  steps: [100],
  haltPercent: 50,
  at: 1,
  ...(window && { window }),
});

const logged = <T>(body: T, lamport: number, hash: string): Logged<T> => ({ body, author: 'aa', lamport, hash });
const control = (action: ControlAction, lamport: number, hash: string, id = 'r1'): Logged<Control> =>
  logged({ type: 'control', rollout: id, action, at: lamport }, lamport, hash);

/** Just what rolloutStatus reads of a store. */
const storeWith = (controls: Logged<Control>[], steps: { step: number; halted: boolean }[] = []) =>
  ({
    rollouts: new Map([['r1', logged(rollout(), 1, '00')]]),
    latestStates: () => undefined,
    steps: steps.map((s, i) => logged({ type: 'step', rollout: 'r1', ...s, at: i }, 10 + i, `s${i}`)),
    controls,
    releases: new Map(),
  }) as unknown as FirmwareStore;

describe('firmware block: control and window', () => {
  it('control bodies and rollout windows round trip through canonical CBOR', () => {
    const arb = fc.oneof(
      fc
        .record({
          rollout: fc.stringMatching(/^[a-z0-9.-]{1,64}$/),
          action: fc.constantFrom(...CONTROL_ACTIONS),
          at: fc.nat(),
        })
        .map((c): FirmwareBody => ({ type: 'control', ...c })),
      fc
        .tuple(fc.nat(1439), fc.nat(1439))
        .filter(([a, b]) => a !== b)
        .map(([start, end]): FirmwareBody => rollout({ start, end })),
    );
    fc.assert(
      fc.property(arb, (b) => {
        const bytes = encodeCanonical(firmwareBody(b));
        const raw = decodeCbor(bytes);
        expect(raw.ok).toBe(true);
        const d = raw.ok ? decodeFirmwareBody(raw.value) : raw;
        expect(d).toEqual({ ok: true, value: b });
      }),
    );
    // No window: no key 8 (blocks logged before windows existed decode the same).
    expect(firmwareBody(rollout()).has(8)).toBe(false);
  });

  it('refuses an unknown action, an empty window and minutes past the day', () => {
    const c = firmwareBody({ type: 'control', rollout: 'r1', action: 'pause', at: 1 });
    expect(decodeFirmwareBody(new Map(c).set(2, 3))).toMatchObject({
      ok: false,
      error: { code: 'firmware-block/bad-field' },
    });
    const r = firmwareBody(rollout({ start: 60, end: 120 }));
    for (const w of [[60, 60], [0, 1440], [1], 'x'])
      expect(decodeFirmwareBody(new Map(r).set(8, w as never)).ok, JSON.stringify(w)).toBe(false);
    expect(() => firmwareBody(rollout({ start: 5, end: 5 }))).toThrow(/window/);
  });
});

describe('rollout controls fold', () => {
  it('abort wins over everything; otherwise the latest pause or resume (lamport, then hash), whatever the arrival order', () => {
    const cases: [Logged<Control>[], { paused: boolean; aborted: boolean }][] = [
      [[], { paused: false, aborted: false }],
      [[control('pause', 5, 'a')], { paused: true, aborted: false }],
      [[control('pause', 5, 'a'), control('resume', 6, 'b')], { paused: false, aborted: false }],
      [[control('resume', 6, 'b'), control('pause', 7, 'a')], { paused: true, aborted: false }],
      // Same lamport (two gateways at once): the larger hash is the later one.
      [[control('pause', 8, 'ff'), control('resume', 8, '0f')], { paused: true, aborted: false }],
      [[control('abort', 2, 'a'), control('resume', 9, 'b')], { paused: false, aborted: true }],
      // Another rollout's controls do not count.
      [[control('pause', 3, 'a', 'r2')], { paused: false, aborted: false }],
    ];
    for (const [list, want] of cases) {
      expect(foldControls(list, 'r1'), JSON.stringify(list)).toEqual(want);
      expect(foldControls([...list].reverse(), 'r1')).toEqual(want);
    }
  });

  it('any permutation of the same blocks folds to the same state (property)', () => {
    const arb = fc
      .uniqueArray(
        fc.record({
          action: fc.constantFrom(...CONTROL_ACTIONS),
          lamport: fc.nat(20),
          hash: fc.stringMatching(/^[0-9a-f]{4}$/),
        }),
        { selector: (c) => c.hash, maxLength: 8 },
      )
      .chain((cs) =>
        fc.tuple(fc.constant(cs), fc.shuffledSubarray(cs, { minLength: cs.length, maxLength: cs.length })),
      );
    fc.assert(
      fc.property(arb, ([cs, shuffled]) => {
        const a = foldControls(
          cs.map((c) => control(c.action, c.lamport, c.hash)),
          'r1',
        );
        const b = foldControls(
          shuffled.map((c) => control(c.action, c.lamport, c.hash)),
          'r1',
        );
        expect(b).toEqual(a);
        expect(a.aborted).toBe(cs.some((c) => c.action === 'abort'));
      }),
    );
  });

  it('status says aborted over halted, done and paused; paused over running', () => {
    expect(rolloutStatus(storeWith([]), 'r1')!.state).toBe('running');
    expect(rolloutStatus(storeWith([control('pause', 5, 'a')]), 'r1')!.state).toBe('paused');
    expect(rolloutStatus(storeWith([control('pause', 5, 'a')], [{ step: 2, halted: false }]), 'r1')!.state).toBe(
      'done',
    );
    expect(rolloutStatus(storeWith([control('pause', 5, 'a')], [{ step: 1, halted: true }]), 'r1')!.state).toBe(
      'halted',
    );
    const aborted = rolloutStatus(storeWith([control('abort', 5, 'a')], [{ step: 2, halted: false }]), 'r1')!;
    expect(aborted).toMatchObject({ state: 'aborted', aborted: true });
  });

  it('a fold patched with each device block (as the runner keeps it) equals the fold made afresh, whatever the order (property)', () => {
    const states = ['offered', 'downloading', 'verified', 'installing', 'confirmed', 'failed', 'rolled-back'] as const;
    const arb = fc.array(
      fc.record({
        device: fc.constantFrom('d1', 'd2', 'd3', 'x9'),
        state: fc.constantFrom(...states),
        lamport: fc.nat(20),
        hash: fc.constantFrom('0a', '1b', 'ff'),
      }),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(arb, (blocks) => {
        // What FirmwareStore keeps: each device's latest block (laterThan), as they arrive.
        const latest = new Map<string, Logged<DeviceBody>>();
        const store = { ...storeWith([]), latestStates: () => latest } as unknown as FirmwareStore;
        const patched = rolloutStatus(store, 'r1')!;
        for (const [i, b] of blocks.entries()) {
          const body: DeviceBody = {
            type: 'device',
            rollout: 'r1',
            device: b.device,
            state: b.state,
            percent: 0,
            reason: '',
            at: i,
          };
          const l = logged(body, b.lamport, `${b.hash}${i}`);
          const held = latest.get(b.device);
          if (!held || laterThan(l, held)) latest.set(b.device, l);
          patchDevice(patched, b.device, latest.get(b.device)!.body);
        }
        const fresh = rolloutStatus(store, 'r1')!;
        expect(patched.devices).toEqual(fresh.devices);
        expect(patched.counts).toEqual(fresh.counts);
      }),
    );
  });
});

describe('offer window', () => {
  const at = (hh: number, mm: number) => new Date(2026, 2, 29, hh, mm, 30); // a DST day in Europe: local time is what counts
  const win = (text: string) => {
    const w = parseOfferWindow(text);
    if (!w.ok) throw new Error(w.error.message);
    return w.value;
  };

  it('parses HH:MM-HH:MM and refuses anything else', () => {
    expect(win('02:00-04:30')).toEqual({ start: 120, end: 270 });
    expect(win('22:15-06:00')).toEqual({ start: 1335, end: 360 });
    expect(formatOfferWindow(win('22:15-06:00'))).toBe('22:15-06:00');
    for (const bad of ['2:00-04:00', '24:00-01:00', '01:60-02:00', '01:00-01:00', '01:00', '01:00-02:00-03:00', ''])
      expect(parseOfferWindow(bad), bad).toMatchObject({ ok: false, error: { code: 'firmware/bad-window' } });
  });

  it('inside a same-day window: start included, end excluded', () => {
    const w = win('02:00-04:30');
    expect(inOfferWindow(w, at(1, 59))).toBe(false);
    expect(inOfferWindow(w, at(2, 0))).toBe(true);
    expect(inOfferWindow(w, at(4, 29))).toBe(true);
    expect(inOfferWindow(w, at(4, 30))).toBe(false);
    expect(inOfferWindow(w, at(14, 0))).toBe(false);
  });

  it('a window crossing midnight is inside late in the evening and early in the morning', () => {
    const w = win('22:00-06:00');
    expect(inOfferWindow(w, at(21, 59))).toBe(false);
    expect(inOfferWindow(w, at(22, 0))).toBe(true);
    expect(inOfferWindow(w, at(23, 59))).toBe(true);
    expect(inOfferWindow(w, at(0, 0))).toBe(true);
    expect(inOfferWindow(w, at(5, 59))).toBe(true);
    expect(inOfferWindow(w, at(6, 0))).toBe(false);
    expect(inOfferWindow(w, at(12, 0))).toBe(false);
  });

  it('no window is always inside; every minute is inside exactly one of a window and its complement (property)', () => {
    expect(inOfferWindow(undefined, at(3, 3))).toBe(true);
    fc.assert(
      fc.property(fc.nat(1439), fc.nat(1439), fc.nat(1439), (start, end, m) => {
        fc.pre(start !== end);
        const now = at(Math.floor(m / 60), m % 60);
        expect(inOfferWindow({ start, end }, now)).toBe(!inOfferWindow({ start: end, end: start }, now));
      }),
    );
  });
});
