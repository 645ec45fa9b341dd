/** Each rules operator on virtual time (ReplayScheduler): no wall clock, exact instants. */
import { describe, expect, it } from 'vitest';
import { rulesHarness } from '../helpers/rules.js';

const alertRule = (
  extra: string,
  when = 'v.t > 30',
  actions = '[{ alert: "on" }]',
  onClear = '[{ alert: "off" }]',
): string => `
rules:
  - id: r
    trigger: { names: [t] }
    when: "${when}"
${extra}
    then: ${actions}
    onClear: ${onClear}
`;

describe('rules operators (virtual time)', () => {
  it('hysteresis holds the condition until clear holds', () => {
    const plain = rulesHarness(alertRule(''));
    const hyst = rulesHarness(alertRule('    clear: "v.t < 25"'));
    for (const [ms, t] of [
      [0, 20],
      [1000, 31],
      [2000, 28],
      [3000, 26],
      [4000, 24],
      [5000, 31],
    ] as const) {
      plain.frame(ms, 'd', { t });
      hyst.frame(ms, 'd', { t });
    }
    // without hysteresis 28 already clears; with it, only 24 (< 25) does
    expect(plain.log()).toEqual(['1000 alert on', '2000 alert off', '5000 alert on']);
    expect(hyst.log()).toEqual(['1000 alert on', '4000 alert off', '5000 alert on']);
  });

  it('debounce passes a change only once it has lasted', () => {
    const h = rulesHarness(alertRule('    debounce: 1s'));
    h.frame(0, 'd', { t: 31 }); // spike: true for 500 ms only
    h.frame(500, 'd', { t: 20 });
    h.frame(2000, 'd', { t: 31 }); // stays true: fires 1 s later, with no frame needed
    h.frame(2600, 'd', { t: 32 });
    h.advance(3100);
    h.frame(4000, 'd', { t: 20 });
    h.advance(6000);
    expect(h.log()).toEqual(['3000 alert on', '5000 alert off']);
  });

  it('for-duration fires when the condition has held for the whole duration', () => {
    const h = rulesHarness(alertRule('    for: 5s'));
    h.frame(0, 'd', { t: 31 });
    h.frame(3000, 'd', { t: 20 }); // broken after 3 s: no fire
    h.frame(4000, 'd', { t: 31 });
    h.frame(6000, 'd', { t: 33 });
    h.advance(8999);
    expect(h.log()).toEqual([]);
    h.advance(9000); // 4000 + 5 s, from the timer (no frame at 9000)
    h.frame(10_000, 'd', { t: 10 });
    expect(h.log()).toEqual(['9000 alert on', '10000 alert off']);
  });

  it('cooldown drops firings within the cooldown of the last one', () => {
    const h = rulesHarness(alertRule('    fire: every\n    cooldown: 10s', 'v.t > 30', '[{ alert: "on" }]', '[]'));
    for (let s = 0; s <= 25; s++) h.frame(s * 1000, 'd', { t: 31 });
    expect(h.log()).toEqual(['0 alert on', '10000 alert on', '20000 alert on']);
  });

  it('rate limit allows at most max firings per period', () => {
    const h = rulesHarness(
      alertRule('    fire: every\n    rateLimit: { max: 2, per: 10s }', 'v.t > 30', '[{ alert: "on" }]', '[]'),
    );
    for (let s = 0; s <= 12; s++) h.frame(s * 1000, 'd', { t: 31 });
    expect(h.log()).toEqual(['0 alert on', '1000 alert on', '10000 alert on', '11000 alert on']);
  });

  it('tumbling window emits its aggregates when the window closes', () => {
    const h = rulesHarness(`
rules:
  - id: r
    trigger: { names: [t] }
    window: { tumbling: 10s }
    aggregate: { a: avg(t), mn: min(t), mx: max(t), n: count(t), s: sum(t), r: rate(t), l: last(t) }
    when: "agg.n > 0.0"
    fire: every
    then: [{ alert: "avg={{agg.a}} min={{agg.mn}} max={{agg.mx}} n={{agg.n}} sum={{agg.s}} rate={{agg.r}} last={{agg.l}}" }]
`);
    h.frame(1000, 'd', { t: 10 });
    h.frame(3000, 'd', { t: 20 });
    h.frame(5000, 'd', { t: 30 });
    expect(h.log()).toEqual([]); // nothing until the window [0, 10 s) closes
    h.frame(12_000, 'd', { t: 100 });
    h.advance(20_000);
    expect(h.log()).toEqual([
      '10000 alert avg=20 min=10 max=30 n=3 sum=60 rate=5 last=30',
      '20000 alert avg=100 min=100 max=100 n=1 sum=100 rate=0 last=100',
    ]);
    expect(h.decisions[0]!.inputs.map((i) => i.seq)).toEqual([0, 1, 2]);
  });

  it('sliding window aggregates the last size ms on every frame', () => {
    const h = rulesHarness(`
rules:
  - id: r
    trigger: { names: [t] }
    window: { sliding: 3s }
    aggregate: { a: avg(t) }
    when: "agg.a > 20.0"
    then: [{ alert: "avg {{agg.a}}" }]
    onClear: [{ alert: "clear {{agg.a}}" }]
`);
    h.frame(0, 'd', { t: 30 }); // avg 30
    h.frame(1000, 'd', { t: 0 }); // avg 15
    h.frame(2000, 'd', { t: 30 }); // avg 20 (not > 20)
    h.frame(3500, 'd', { t: 30 }); // frame 0 and 1 left the window... avg of (1000? no: > 500) → 0,30,30 = 20
    h.frame(4500, 'd', { t: 30 }); // window (1500, 4500]: 30,30,30
    expect(h.log()).toEqual(['0 alert avg 30', '1000 alert clear 15', '4500 alert avg 30']);
  });

  it('count window aggregates the last N frames once N have arrived', () => {
    const h = rulesHarness(`
rules:
  - id: r
    trigger: { names: [t] }
    window: { count: 3 }
    aggregate: { mx: max(t) }
    when: "agg.mx > 50.0"
    fire: every
    then: [{ alert: "max {{agg.mx}}" }]
`);
    h.frame(0, 'd', { t: 60 }); // only 1 frame: no sample yet
    h.frame(1, 'd', { t: 1 });
    h.frame(2, 'd', { t: 2 }); // [60,1,2]
    h.frame(3, 'd', { t: 3 }); // [1,2,3]
    expect(h.log()).toEqual(['2 alert max 60']);
  });

  it('per-device state: one device does not clear another', () => {
    const h = rulesHarness(
      alertRule('    per: device', 'v.t > 30', '[{ alert: "on {{device}}" }]', '[{ alert: "off {{device}}" }]'),
    );
    h.frame(0, 'a', { t: 31 });
    h.frame(1, 'b', { t: 10 });
    h.frame(2, 'b', { t: 40 });
    h.frame(3, 'a', { t: 10 });
    expect(h.log()).toEqual(['0 alert on a', '2 alert on b', '3 alert off a']);
  });

  it('watchdog raises the safe action after silence and the resume action on the next frame', () => {
    const h = rulesHarness(`
rules:
  - id: wd
    trigger: { devices: [a, b] }
    watchdog:
      silence: 5s
      then: [{ command: { device: "{{device}}-valve", actuator: open, value: false, ttl: 10s } }]
      onResume: [{ alert: "{{device}} back" }]
`);
    h.frame(0, 'a', { t: 1 });
    h.frame(2000, 'a', { t: 1 });
    h.frame(4000, 'a', { t: 1 });
    h.advance(8999);
    // b never spoke: silent 5 s after the rule started
    expect(h.log()).toEqual(['5000 command b-valve.open=false']);
    h.advance(9000);
    h.frame(9500, 'a', { t: 1 });
    expect(h.log()).toEqual([
      '5000 command b-valve.open=false',
      '9000 command a-valve.open=false',
      '9500 alert a back',
    ]);
  });

  it('state machine holds a state for its minimum dwell, then takes the guarded transition', () => {
    const h = rulesHarness(`
rules:
  - id: m
    machine:
      initial: idle
      states:
        idle: { minDwell: 10s, onEnter: [{ alert: "idle" }] }
        busy: { onEnter: [{ alert: "busy" }] }
        done: { onEnter: [{ alert: "done" }] }
      transitions:
        - { from: idle, to: busy, when: "has(v.go) && v.go == true" }
        - { from: busy, to: done, after: 3s }
`);
    h.frame(2000, 'd', { go: true }); // guard true but dwell 2 s < 10 s
    h.frame(5000, 'd', { go: true });
    expect(h.log()).toEqual(['0 alert idle']);
    h.advance(10_000); // the dwell timer re-evaluates with the last frame
    h.advance(13_000); // the timed transition
    expect(h.log()).toEqual(['0 alert idle', '10000 alert busy', '13000 alert done']);
    expect(h.decisions[1]!.reason).toContain('idle → busy');
  });

  it('interlock refuses the second of two commands that must never coincide', () => {
    const h = rulesHarness(`
rules:
  - id: a
    trigger: { devices: [x] }
    when: "v.go == true"
    then: [{ command: { device: s1, actuator: aspect, value: green, ttl: 5s } }]
  - id: b
    trigger: { devices: [y] }
    when: "v.go == true"
    then: [{ command: { device: s2, actuator: aspect, value: green, ttl: 5s } }]
    onClear: [{ command: { device: s2, actuator: aspect, value: red, ttl: 5s } }]
interlocks:
  - id: greens
    never:
      - { device: s1, actuator: aspect, value: green }
      - { device: s2, actuator: aspect, value: green }
`);
    h.frame(0, 'x', { go: true });
    h.frame(1, 'y', { go: true });
    h.frame(2, 'y', { go: false }); // red is not interlocked
    expect(h.log()).toEqual([
      '0 command s1.aspect=green',
      '1 alert interlock "greens" refused s2.aspect=green: s1.aspect=green is in effect',
      '2 command s2.aspect=red',
    ]);
    expect(h.engine.stats().find((s) => s.id === 'b')!.refused).toBe(1);
  });

  it('a condition that fails to evaluate counts an error and is false', () => {
    const h = rulesHarness(alertRule('', 'v.vib > 3.0'));
    h.frame(0, 'd', { t: 1 }); // no vib: missing key
    h.frame(1, 'd', { t: 1, vib: 4 });
    expect(h.log()).toEqual(['1 alert on']);
    const s = h.engine.stats()[0]!;
    expect(s.evalErrors).toBe(1);
    expect(s.lastEvalError).toMatch(/vib/);
  });

  it('trigger filters by device, model, site and SenML name', () => {
    const h = rulesHarness(`
rules:
  - id: r
    trigger: { models: [press-vib-1], sites: [plant-a], names: [vib] }
    when: "true"
    fire: every
    then: [{ alert: "{{device}}" }]
`);
    h.frame(0, 'a', { vib: 1 }, { model: 'press-vib-1', site: 'plant-a' });
    h.frame(1, 'b', { vib: 1 }, { model: 'env-1', site: 'plant-a' });
    h.frame(2, 'c', { vib: 1 }, { model: 'press-vib-1', site: 'plant-b' });
    h.frame(3, 'd', { temp: 1 }, { model: 'press-vib-1', site: 'plant-a' });
    h.frame(4, 'e', { vib: 1 }); // no model known
    expect(h.log()).toEqual(['0 alert a']);
  });
});
