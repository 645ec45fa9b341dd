/**
 * The intersection example with the gateway started ~10 s before the firmware-sim fleet, as a
 * user would bring a junction up: the machine's first commands end `no-route` (no device heard
 * yet). When each device is first heard, the gateway sends it the state the rules want now, so
 * from then on each signal head shows (by its own acks) what the machine believes it shows.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../firmware-sim/sensors.js';
import { actuationBlocks } from '../../gateway/actuation/journal.js';
import { RESENT_REASON, readDecisions } from '../../rules/actuation/index.js';
import { waitFor } from '../helpers/env.js';
import { connectExampleFleet, startExampleGateway } from '../helpers/examples.js';

/** A command is decided, sent, obeyed and acked within this on a loaded box. */
const LAG_MS = 2500;
describe('intersection example, gateway up before the fleet', () => {
  it('the signal heads show the states the machine believes, from the first one on (checked from their acks)', {
    timeout: 90_000,
  }, async () => {
    const ex = await startExampleGateway('intersection');
    const { gw, spec } = ex;
    const upAt = Date.now();
    // The machine runs alone: start-up all red, NS green 2 s later, and at 10 s of silence its
    // watchdog puts the junction into flashing amber; all seven commands end no-route. The fleet
    // comes up just then, so the machine believes a state that differs from the heads' (red) for
    // five seconds (flash's dwell) unless that state is sent when they are heard.
    await waitFor(() => gw.actuation.actuation.stats.noRoute >= 7, 30_000, 'seven commands ended no-route');
    expect(Date.now() - upAt).toBeGreaterThanOrEqual(9_000);
    expect(gw.actuation.actuation.stats.acked).toBe(0);

    const fleetAt = Date.now();
    const sims = connectExampleFleet(ex);
    await waitFor(() => sims.every((s) => s.link.connected), 15_000, 'devices connected');
    const firstFrameAt = Date.now();
    const rng = new Prng(Date.now() % 100_000);
    while (Date.now() - fleetAt < 25_000) {
      for (const s of sims) {
        if (s.id === 'ped-1') s.device.force('door', rng.next() < 0.05);
        else s.device.force('count', rng.next() < 0.5 ? 1 + rng.int(3) : 0);
        s.link.send(s.device.nextFrame());
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const end = Date.now();
    await waitFor(() => gw.actuation.actuation.inFlight === 0, 15_000, 'commands answered');
    expect(gw.actuation.actuation.stats.resent).toBeGreaterThanOrEqual(1);

    // What the machine believes each head shows (its own decisions) against what the head
    // acked (the device's signed acks, including the re-sent desired states), over time.
    const { decisions } = readDecisions(actuationBlocks(gw.blockLog));
    const commands = decisions.flatMap((d) =>
      d.action.kind === 'command' ? [{ ...d.action.command, at: d.at, reason: d.reason, outcome: d.outcome }] : [],
    );
    const heads = ['sig-ns/aspect', 'sig-ew/aspect', 'ped-1/walk'];
    const of = (c: (typeof commands)[0]) => `${c.device}/${c.actuator}`;
    for (const head of heads) {
      const [device, actuator] = head.split('/') as [string, string];
      const believed = commands
        .filter((c) => of(c) === head && !c.reason.startsWith(RESENT_REASON))
        .map((c) => ({ at: c.at, value: c.value }));
      const shown = commands
        .filter((c) => of(c) === head && c.outcome?.state === 'acked')
        .map((c) => ({ at: c.outcome!.at, value: c.value }))
        .sort((a, b) => a.at - b.at);
      expect(believed.length, head).toBeGreaterThan(0);
      expect(shown.length, `${head}: acked commands`).toBeGreaterThan(0);
      // The device's own state agrees with its last ack.
      expect(sims.find((s) => s.id === device)!.actuators!.get(actuator)).toBe(shown.at(-1)!.value);
      // From the devices' first frames on, each span where the head shows something else than
      // the machine believes lasts less than a command's round trip.
      const valueAt = (xs: { at: number; value: unknown }[], t: number, initial: unknown) =>
        xs.filter((x) => x.at <= t).at(-1)?.value ?? initial;
      let since: number | undefined;
      for (let t = firstFrameAt; t <= end; t += 100) {
        const b = valueAt(believed, t, undefined);
        const s = valueAt(shown, t, spec[device]![actuator]);
        if (b === s) since = undefined;
        else {
          since ??= t;
          expect(
            t - since,
            `${head} at +${t - firstFrameAt} ms after the first frames: the machine believes ${String(b)}, the head acked ${String(s)}`,
          ).toBeLessThan(LAG_MS);
        }
      }
    }
    expect(gw.actuation.actuation.stats.refused).toBe(0);
  });
});
