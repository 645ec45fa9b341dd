/**
 * rules/examples on virtual time: the factory cell (slow, stop, restart only after an operator
 * ack) and the intersection (minimum green, pedestrian phases, flashing amber on a silent
 * detector, and a property test: never two conflicting greens under random input).
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBody, decodeSign1 } from '../../protocols/index.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { manifestSeed, readManifest } from '../../firmware-sim/manifest.js';
import type { Decision } from '../../rules/decision.js';
import { loadRuleFiles } from '../../rules/dsl/load.js';
import type { RuleSet } from '../../rules/dsl/types.js';
import { toRuleFrame } from '../../rules/frame.js';
import { rulesHarness, T0 } from '../helpers/rules.js';

const FACTORY = 'rules/examples/factory-cell';
const JUNCTION = 'rules/examples/intersection';
const factory = await loadRuleFiles([`${FACTORY}/rules.yaml`]);
const junction = await loadRuleFiles([`${JUNCTION}/rules.yaml`]);

const only = (set: RuleSet, id: string): RuleSet => ({
  rules: set.rules.filter((r) => r.id === id),
  interlocks: set.interlocks,
});
const speeds = (ds: readonly Decision[]): string[] =>
  ds.flatMap((d) => (d.action.kind === 'command' ? [`${d.at - T0} ${String(d.action.command.value)}`] : []));

describe('factory cell example', () => {
  it('issue 7: firmware-sim frames of the example devices reach rules with the names the rules read', () => {
    const want: Record<string, string[]> = {
      'press-01': ['vib', 'temp'],
      'conveyor-01': ['count'],
      'ack-01': ['door'],
      'sig-ns': ['count'],
      'ped-1': ['door'],
    };
    for (const e of [
      ...readManifest(`${FACTORY}/manifest.json`).devices,
      ...readManifest(`${JUNCTION}/manifest.json`).devices,
    ]) {
      const d = new VirtualDevice({ id: e.id, seed: manifestSeed(e), model: e.model, site: e.site, powerOnMs: T0 });
      const f = d.nextFrame(T0 + 1000);
      const body = decodeBody(
        decodeSign1(f.bytes).ok
          ? (decodeSign1(f.bytes) as { value: { payload: Uint8Array } }).value.payload
          : new Uint8Array(),
      );
      expect(body.ok).toBe(true);
      const rf = toRuleFrame(
        { device: e.id, model: e.model, site: e.site, rxTime: T0 + 1005 },
        body.ok ? body.value : { type: 'x' },
      )!;
      expect(rf).toMatchObject({ device: e.id, boot: 1, seq: 0, model: e.model, site: e.site, time: T0 + 1005 });
      if (want[e.id]) expect(rf.records.map((r) => r.name)).toEqual(want[e.id]);
    }
  });

  it('issue 7: vibration slows then stops the conveyor at once; it restarts only after an operator ack', () => {
    const h = rulesHarness(only(factory, 'conveyor'));
    let t = 0;
    const press = (vib: number, temp = 35): void => {
      t += 1000;
      h.frame(t, 'press-01', { vib, temp });
    };
    for (let i = 0; i < 10; i++) press(2);
    expect(speeds(h.decisions)).toEqual(['0 1']); // initial state: running
    for (let i = 0; i < 5; i++) press(6); // the 5 s average crosses 4.0 → slowed
    expect(speeds(h.decisions)).toEqual(['0 1', '13000 0.4']);
    press(9.5); // severe: stopped on this very frame (the rule's deadline is the frame itself)
    expect(speeds(h.decisions)).toEqual(['0 1', '13000 0.4', '16000 0']);
    const stop = h.decisions.find((d) => d.action.kind === 'command' && d.action.command.value === 0)!;
    // the inputs are the 5 s window's frames, ending with the one that crossed the threshold
    expect(stop.inputs.map((i) => `${i.device}/${i.seq}`)).toEqual([
      'press-01/11',
      'press-01/12',
      'press-01/13',
      'press-01/14',
      'press-01/15',
    ]);
    expect(stop.reason).toMatch(/slowed → stopped: .*agg\.vib_max=9\.5/);
    for (let i = 0; i < 10; i++) press(2); // calm again, but no ack: stays stopped
    expect(speeds(h.decisions).length).toBe(3);
    t += 500;
    h.frame(t, 'ack-01', { door: true }); // operator acknowledges
    expect(speeds(h.decisions)).toEqual(['0 1', '13000 0.4', '16000 0', '26500 1']);
  });

  it('issue 7: an ack given before the stop does not count; no restart while readings are still high', () => {
    const h = rulesHarness(only(factory, 'conveyor'));
    h.frame(500, 'ack-01', { door: true }); // early ack, latched while running
    h.frame(1000, 'press-01', { vib: 12, temp: 35 }); // stop (entering stopped clears the latch)
    for (let t = 2000; t <= 8000; t += 1000) h.frame(t, 'press-01', { vib: 2, temp: 35 });
    expect(speeds(h.decisions)).toEqual(['0 1', '1000 0']);
    h.frame(8500, 'ack-01', { door: true });
    h.frame(9000, 'press-01', { vib: 2, temp: 35 });
    expect(speeds(h.decisions)).toEqual(['0 1', '1000 0', '8500 1']);
  });

  it('issue 7: an ack while the spike that stopped it is still in the window does not restart it (no flapping)', () => {
    const h = rulesHarness(only(factory, 'conveyor'));
    // one 9.5 spike among calm frames: the 5 s average stays under 3.0, the peak does not
    for (let t = 1000; t <= 3000; t += 1000) h.frame(t, 'press-01', { vib: 1, temp: 35 });
    h.frame(4000, 'press-01', { vib: 9.5, temp: 35 });
    h.frame(5000, 'press-01', { vib: 1, temp: 35 });
    h.frame(5500, 'ack-01', { door: true }); // key turned while the spike is still in the window
    h.frame(6000, 'press-01', { vib: 1, temp: 35 });
    expect(speeds(h.decisions)).toEqual(['0 1', '4000 0']);
    for (let t = 7000; t <= 10_000; t += 1000) h.frame(t, 'press-01', { vib: 1, temp: 35 });
    // the 5 s window (9 s − 5 s, 9 s] no longer holds the spike: the latched ack restarts it, once
    expect(speeds(h.decisions)).toEqual(['0 1', '4000 0', '9000 1']);
  });

  it('issue 7: a silent press stops the conveyor (watchdog safe state)', () => {
    const h = rulesHarness(only(factory, 'conveyor'));
    for (let t = 1000; t <= 3000; t += 1000) h.frame(t, 'press-01', { vib: 2, temp: 35 });
    h.advance(20_000);
    expect(speeds(h.decisions)).toEqual(['0 1', '13000 0']);
    expect(h.decisions.at(-1)!.reason).toMatch(/watchdog: press-01 silent/);
  });
});

interface Aspects {
  ns?: string;
  ew?: string;
  walk?: boolean;
}

/** Applies the command decisions in order; returns the aspects after each, for checks. */
function replayAspects(ds: readonly Decision[], check: (a: Aspects, d: Decision) => void): Aspects {
  const a: Aspects = {};
  for (const d of ds) {
    if (d.action.kind !== 'command') continue;
    const c = d.action.command;
    if (c.device === 'sig-ns') a.ns = String(c.value);
    if (c.device === 'sig-ew') a.ew = String(c.value);
    if (c.device === 'ped-1') a.walk = c.value === true;
    check(a, d);
  }
  return a;
}

describe('intersection example', () => {
  it('issue 7: minimum green, demand-driven phases, pedestrian walk between all reds', () => {
    const h = rulesHarness(junction);
    const det = (t: number, ns: number, ew: number): void => {
      h.frame(t, 'sig-ns', { count: ns });
      h.frame(t, 'sig-ew', { count: ew });
    };
    for (let t = 1000; t <= 5000; t += 1000) det(t, 1, 0);
    det(6000, 0, 1); // EW demand during NS minimum green (NS green from 2 s)
    expect(h.engine.stats()[0]!.refused).toBe(0);
    for (let t = 7000; t <= 11_000; t += 1000) det(t, 0, 0);
    h.advance(12_000); // minimum green (10 s from 2 s) over: the dwell timer takes the demand
    expect(
      h
        .log()
        .filter((l) => l.includes('sig-'))
        .slice(-2),
    ).toEqual(['2000 command sig-ns.aspect=green', '12000 command sig-ns.aspect=amber']);
    h.frame(12_500, 'ped-1', { door: true });
    for (let t = 13_000; t <= 40_000; t += 1000) det(t, 0, 0);
    const log = h
      .log()
      .filter((l) => l.includes('command'))
      .map((l) => l.replace(/ command /, ' '));
    expect(log.slice(3)).toEqual([
      '2000 sig-ns.aspect=green',
      '12000 sig-ns.aspect=amber',
      '15000 sig-ns.aspect=red',
      '17000 ped-1.walk=true', // the pedestrian phase, between all reds
      '25000 ped-1.walk=false',
      '29000 sig-ew.aspect=green',
    ]);
  });

  it('issue 7: a silent detector puts the junction into flashing amber; it recovers when both report', () => {
    const h = rulesHarness(junction);
    for (let t = 1000; t <= 5000; t += 1000) h.frame(t, 'sig-ns', { count: 0 }), h.frame(t, 'sig-ew', { count: 0 });
    for (let t = 6000; t <= 20_000; t += 1000) h.frame(t, 'sig-ns', { count: 0 }); // sig-ew silent from 5 s
    const flash = h.log().filter((l) => l.includes('flash-amber'));
    expect(flash).toEqual(['15000 command sig-ns.aspect=flash-amber', '15000 command sig-ew.aspect=flash-amber']);
    expect(h.log()).toContain('15000 alert junction-5 flashing amber: detector(s) ["sig-ew"] silent');
    h.frame(21_000, 'sig-ew', { count: 0 });
    h.advance(24_000);
    expect(
      h
        .log()
        .filter((l) => l.includes('command'))
        .slice(-4),
    ).toEqual([
      '21000 command ped-1.walk=false',
      '21000 command sig-ns.aspect=red',
      '21000 command sig-ew.aspect=red',
      '23000 command sig-ns.aspect=green',
    ]);
  });

  it('issue 7: property: never conflicting greens (or green with walk), minimum green held, under random detector and pedestrian input', () => {
    const step = fc.record({
      dt: fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 0, max: 2000 }) },
        { weight: 1, arbitrary: fc.integer({ min: 2000, max: 15_000 }) },
      ),
      who: fc.constantFrom('sig-ns', 'sig-ew', 'ped-1', 'sig-ns', 'sig-ew'),
      count: fc.integer({ min: 0, max: 3 }),
      press: fc.boolean(),
    });
    let steps = 0;
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(fc.array(step, { minLength: 200, maxLength: 600 }), (input) => {
        const h = rulesHarness(junction);
        let t = 0;
        for (const s of input) {
          t += s.dt;
          h.frame(t, s.who, s.who === 'ped-1' ? { door: s.press } : { count: s.count });
        }
        h.advance(t + 60_000);
        steps += input.length;
        const greenSince: Record<string, number> = {};
        replayAspects(h.decisions, (a, d) => {
          const on = [a.ns === 'green', a.ew === 'green', a.walk === true].filter(Boolean).length;
          expect(on, `${d.at - T0}: ${JSON.stringify(a)}`).toBeLessThanOrEqual(1);
          if (d.action.kind !== 'command') return;
          const c = d.action.command;
          if (c.device === 'ped-1') return;
          if (c.value === 'green') greenSince[c.device] = d.at;
          else if (greenSince[c.device] !== undefined) {
            // a green ends early only for flashing amber (watchdog safety)
            if (c.value !== 'flash-amber') expect(d.at - greenSince[c.device]!).toBeGreaterThanOrEqual(10_000);
            delete greenSince[c.device];
          }
        });
        // the machine never even asks for a conflicting green: the interlock is a second line
        expect(h.engine.stats()[0]!.refused).toBe(0);
      }),
      { numRuns: 40, seed: 7 },
    );
    expect(steps).toBeGreaterThan(10_000);
  });

  it('issue 7: the interlock catches a machine that would show conflicting greens', () => {
    const bad = structuredClone({ ...junction.rules[0]! }) as (typeof junction.rules)[0] & { kind: 'machine' };
    // sabotage: skip the amber/all-red of NS (straight from NS green to EW green)
    const h = rulesHarness({
      rules: [
        {
          ...bad,
          transitions: [
            { from: 'startup', to: 'ns-green', afterMs: 2000 },
            { from: 'ns-green', to: 'ew-green', when: 'latch.ew' },
          ],
        },
      ],
      interlocks: junction.interlocks,
    });
    for (let t = 1000; t <= 12_000; t += 1000) h.frame(t, 'sig-ew', { count: 1 }), h.frame(t, 'sig-ns', { count: 0 });
    expect(h.log()).toContain(
      '12000 alert interlock "conflicting-greens" refused sig-ew.aspect=green: sig-ns.aspect=green is in effect',
    );
    replayAspects(h.decisions, (a) => expect(a.ns === 'green' && a.ew === 'green').toBe(false));
  });
});
