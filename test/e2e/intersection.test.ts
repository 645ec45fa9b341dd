/**
 * The intersection example (rules/examples/intersection) end to end against
 * firmware-sim over real MQTT: random detector counts and pedestrian requests for ~32 s of
 * real time (the phase machine needs 17 s to serve the second approach, 29 s with a walk phase first), and the signal heads'
 * actual states, as the devices' actuators recorded them, never show conflicting greens or a
 * green with walk. (The property test over thousands of steps runs the same rules on virtual
 * time in test/unit; this one runs the signed-command path.)
 */
import { describe, expect, it } from 'vitest';
import type { ActuatorValue } from '../../firmware-sim/actuators.js';
import { Prng } from '../../firmware-sim/sensors.js';
import { waitFor } from '../helpers/env.js';
import { connectExampleFleet, startExampleGateway } from '../helpers/examples.js';

describe('intersection example over MQTT', () => {
  it('random detector and pedestrian input: the signal heads never show conflicting greens, nor a green with walk', {
    timeout: 60_000,
  }, async () => {
    const ex = await startExampleGateway('intersection');
    const { gw } = ex;
    const sims = connectExampleFleet(ex);
    await waitFor(() => sims.every((s) => s.link.connected), 5000, 'devices connected');
    const seed = Date.now() % 100_000;
    const rng = new Prng(seed);
    const t0 = Date.now();
    while (Date.now() - t0 < 32_000) {
      for (const s of sims) {
        if (s.id === 'ped-1') s.device.force('door', rng.next() < 0.05);
        else s.device.force('count', rng.next() < 0.5 ? 1 + rng.int(3) : 0);
        s.link.send(s.device.nextFrame());
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // Replay the heads' recorded changes in time order and check the invariant after each.
    const events = sims
      .flatMap((s) => s.actuators!.history.map((h) => ({ ...h, device: s.id })))
      .sort((a, b) => a.at - b.at);
    const state: Record<string, ActuatorValue> = { 'sig-ns': 'red', 'sig-ew': 'red', 'ped-1': false };
    const seen = new Set<string>();
    for (const e of events) {
      state[e.device] = e.value;
      seen.add(`${e.device}=${String(e.value)}`);
      const greens = [state['sig-ns'] === 'green', state['sig-ew'] === 'green', state['ped-1'] === true].filter(
        Boolean,
      ).length;
      expect(
        greens,
        `seed ${seed}: conflict after ${e.device}=${String(e.value)} at +${e.at - t0} ms: ${JSON.stringify(state)}`,
      ).toBeLessThanOrEqual(1);
    }
    // The run exercised the machine: both approaches were served.
    expect([...seen]).toEqual(expect.arrayContaining(['sig-ns=green', 'sig-ns=amber', 'sig-ew=green']));
    expect(gw.actuation.actuation.stats.acked).toBeGreaterThanOrEqual(4);
    expect(gw.actuation.actuation.stats.refused).toBe(0);
  });
});
