/**
 * Lease stability under a symmetric partition: two real gateways (TCP sync, embedded brokers),
 * one firmware-sim device that both hear all along and both keep commanding, and no sync for
 * ten lease periods. The device's own history says who it obeyed: at most one hand-over, and
 * the gateway that lost the lease is refused by the device for its stale fence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AckStatus } from '../../protocols/index.js';
import { signCommand } from '../../rules/actuation/command.js';
import type { CommandOutcome } from '../../rules/actuation/index.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { waitFor } from '../helpers/env.js';
import { leaseDevice as dev, leasePair, phase } from '../helpers/lease-pair.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const LEASE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const handOvers = (gateways: readonly string[]): number =>
  gateways.filter((g, i) => i > 0 && g !== gateways[i - 1]).length;

describe('lease stability across a symmetric partition', () => {
  it('two gateways that both hear the device, cut off from each other for ten lease periods: at most one hand-over, and the stale fence is refused', async () => {
    const pair = await leasePair(closers, 'partition', { leaseMs: LEASE_MS, retryMinMs: 100 });
    const { a, b, actuators, dirs } = pair;
    const outcomes: Record<string, CommandOutcome[]> = { 'gw-a': [], 'gw-b': [] };
    a.actuation.actuation.outcomes$.subscribe((o) => outcomes['gw-a']!.push(o));
    b.actuation.actuation.outcomes$.subscribe((o) => outcomes['gw-b']!.push(o));
    await pair.heard();

    // gw-a takes the lease and drives; sync tells gw-b.
    a.actuation.actuation.decide(phase(dev.id, 'green'));
    await waitFor(() => a.actuation.actuation.stats.acked === 1, 15_000, 'gw-a acked');
    await pair.sync();
    expect(b.actuation.actuation.leases.highestFence(dev.id, 'phase')).toBe(1);

    // Partition: no sync for ten lease periods. The device reads every 100 ms to both gateways,
    // and both keep deciding (as their rules would), each its own colour.
    const start = Date.now();
    let tick = 0;
    while (Date.now() - start < 10 * LEASE_MS) {
      pair.send();
      if (tick++ % 3 === 0) {
        a.actuation.actuation.decide(phase(dev.id, 'green', 2000));
        b.actuation.actuation.decide(phase(dev.id, 'amber', 2000));
      }
      await sleep(100);
    }
    await waitFor(
      () => a.actuation.actuation.inFlight + b.actuation.actuation.inFlight === 0,
      15_000,
      'commands answered',
    );
    const obeyed = actuators.history.map((h) => h.gateway);
    expect(handOvers(obeyed), obeyed.join(' ')).toBeLessThanOrEqual(1);
    // The plant was driven all along: obeyed commands in the last half of the partition too.
    expect(actuators.history.filter((h) => h.at > start + 5 * LEASE_MS).length).toBeGreaterThan(0);
    const holder = obeyed.at(-1)!;
    const other = holder === 'gw-a' ? 'gw-b' : 'gw-a';
    if (handOvers(obeyed) === 1) {
      // The old holder was refused for its stale fence once, then stood back (its decisions end no-lease, unsent).
      expect(outcomes[other]!.filter((o) => o.ackStatus === AckStatus.fenced).length).toBeGreaterThanOrEqual(1);
      expect(outcomes[other]!.filter((o) => o.state === 'no-lease').length).toBeGreaterThan(5);
      expect(actuators.stats.refused.fenced).toBeLessThanOrEqual(3);
    }

    // Healed: the logs converge, the holder keeps the lease, the other still stands back.
    await waitFor(
      async () => {
        await pair.sync();
        return a.blockLog.headsDigest() === b.blockLog.headsDigest();
      },
      10_000,
      'logs converged',
    );
    const [winner, loser] = holder === 'gw-a' ? [a, b] : [b, a];
    const before = actuators.history.length;
    winner.actuation.actuation.decide(phase(dev.id, 'red'));
    loser.actuation.actuation.decide(phase(dev.id, 'green'));
    await waitFor(() => actuators.history.length === before + 1, 15_000, 'the holder obeyed after healing');
    expect(actuators.history.at(-1)).toMatchObject({ gateway: holder, value: 'red' });
    expect(outcomes[other]!.at(-1)).toMatchObject({ state: 'no-lease' });

    // And the device refuses the other gateway's fences: its old one (1) and the holder's own number.
    const key = GatewayIdentity.loadOrCreate(other, dirs[other === 'gw-a' ? 0 : 1].dir);
    for (const fence of new Set([1, actuators.fence('phase')])) {
      const stale = signCommand(
        { device: dev.id, actuator: 'phase', value: 'green', ttlMs: 5000 },
        { id: crypto.getRandomValues(new Uint8Array(16)), issued: Date.now(), fence },
        { gatewayId: other, sign: key.sign },
      );
      expect(actuators.handle(stale.frame, Date.now())).toMatchObject({ status: AckStatus.fenced, executed: false });
    }
    expect(actuators.get('phase')).toBe('red');
  });
});
