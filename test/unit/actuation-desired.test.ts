/**
 * Desired actuator state survives `no-route` (rules/actuation/actuation.ts): what the rules
 * last wanted of an actuator that could not be sent goes out when its device is heard, and
 * only that: nothing in flight or acked is sent again, a newer decision replaces it, and a
 * device reporting that state already is left alone. Virtual clock; the device is
 * firmware-sim's real Actuators.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Actuators } from '../../firmware-sim/actuators.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { ActuationRecord } from '../../protocols/actuation.js';
import { type CommandAckBody, toHex } from '../../protocols/index.js';
import { Actuation, type CommandOutcome, RESENT_REASON } from '../../rules/actuation/index.js';
import type { Decision } from '../../rules/decision.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

function rig() {
  const clock = new VirtualClock();
  const seed = randomBytes(32);
  const device = new Actuators({
    device: 'light',
    gateways: [{ id: 'gw-a', publicKey: publicKeyFromSeed(seed) }],
    initial: { aspect: 'red' },
  });
  const journal: ActuationRecord[] = [];
  const outcomes: CommandOutcome[] = [];
  let seq = 0;
  let sends = 0;
  const act: Actuation = new Actuation({
    signer: { gatewayId: 'gw-a', sign: (m) => signEd25519(seed, m) },
    self: toHex(publicKeyFromSeed(seed)),
    clock,
    retryMinMs: 100,
    journal: { record: (r) => journal.push(...r) },
    transport: {
      send: (_d, frame) => {
        sends++;
        const v = device.handle(frame, clock.now());
        const ack: CommandAckBody = {
          type: 'command-ack',
          boot: 1,
          seq: seq++,
          commandId: v.commandId!,
          status: v.status,
        };
        clock.setTimeout(() => act.commandAck('light', ack), 5);
        return true;
      },
    },
  });
  act.outcomes$.subscribe((o) => outcomes.push(o));
  return { clock, device, act, journal, outcomes, sends: () => sends };
}

const aspect = (value: string): Decision => ({
  rule: 'junction',
  ruleVersion: 'v1',
  at: 0,
  inputs: [],
  reason: `phase ${value}`,
  action: { kind: 'command', command: { device: 'light', actuator: 'aspect', value, ttlMs: 30_000 } },
});

describe('desired actuator state across no-route', () => {
  it('a command that ended no-route goes out when the device is first heard, as a new decision of the same rule', () => {
    const r = rig();
    r.act.decide(aspect('green'));
    expect(r.outcomes[0]).toMatchObject({ state: 'no-route' });
    r.act.deviceHeard('light');
    r.clock.advance(10);
    expect(r.device.get('aspect')).toBe('green');
    expect(r.outcomes[1]).toMatchObject({ state: 'acked', rule: 'junction', value: 'green' });
    expect(r.act.stats.resent).toBe(1);
    const decisions = r.journal.filter((x) => x.type === 'decision');
    expect(decisions.at(-1)).toMatchObject({ rule: 'junction', reason: `${RESENT_REASON} (phase green)` });
    // Heard again: the state is acked, nothing more is sent (and nothing superseded).
    const sends = r.sends();
    r.act.deviceHeard('light');
    r.clock.advance(10);
    expect(r.sends()).toBe(sends);
    expect(r.act.stats).toMatchObject({ resent: 1, superseded: 0, acked: 1 });
  });

  it('only the latest decision is desired; a device reporting it already is left alone', () => {
    const r = rig();
    r.act.decide(aspect('green'));
    r.act.decide(aspect('red'));
    r.act.deviceHeard('light', r.clock.now(), (a) => (a === 'aspect' ? 'red' : undefined));
    r.clock.advance(10);
    expect(r.sends()).toBe(0);
    expect(r.act.stats.resent).toBe(0);
    expect(r.device.history).toEqual([]);
  });

  it('silent too long, then heard again: the state decided meanwhile is sent; one in flight is not sent twice', () => {
    const r = rig();
    r.act.deviceHeard('light');
    r.act.decide(aspect('amber'));
    r.clock.advance(10);
    expect(r.outcomes[0]).toMatchObject({ state: 'acked' });
    r.clock.advance(61_000); // past heardWithin (60 s)
    r.act.decide(aspect('red'));
    expect(r.outcomes[1]).toMatchObject({
      state: 'no-route',
      detail: expect.stringMatching(/not heard for/) as string,
    });
    r.act.deviceHeard('light');
    r.act.deviceHeard('light'); // a second frame before the ack: the re-sent command is in flight, not sent again
    r.clock.advance(10);
    expect(r.device.history.map((h) => h.value)).toEqual(['amber', 'red']);
    expect(r.act.stats).toMatchObject({ resent: 1, superseded: 0, acked: 2 });
  });
});
