/**
 * Lease stability (rules/actuation/leases.ts): a holder that keeps hearing its device keeps the
 * lease; a sibling takes it only after expiry plus a grace period and only if it heard the
 * device more recently; a device's fenced refusal stands until the log shows that lease. The
 * property runs two real `Actuation`s (signed commands) against firmware-sim's real
 * `Actuators` (fencing) on a virtual clock, over random hearing and partition schedules.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Actuators } from '../../firmware-sim/actuators.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { LeaseRecord } from '../../protocols/actuation.js';
import { type CommandAckBody, toHex } from '../../protocols/index.js';
import { Actuation } from '../../rules/actuation/index.js';
import { LeaseTable } from '../../rules/actuation/leases.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const LEASE = 1000;
const T0 = 1_700_000_000_000;
const lease = (at: number, fence: number, expires = at + LEASE): LeaseRecord => ({
  type: 'lease',
  at,
  device: 'light',
  actuator: 'phase',
  fence,
  expires,
});

describe('lease decision (LeaseTable)', () => {
  it('a holder that keeps hearing its device keeps the lease, commands or not', () => {
    const t = new LeaseTable('a', LEASE);
    const first = t.claim('light', 'phase', T0);
    expect(first).toMatchObject({ ok: true, fence: 1, taken: true });
    const renewals: LeaseRecord[] = [];
    for (let now = T0; now <= T0 + 10 * LEASE; now += 100) renewals.push(...t.renewHeard('light', now));
    // One renewal per half lease, same fence, never lapsing.
    expect(renewals.length).toBeGreaterThanOrEqual(18);
    expect(renewals.length).toBeLessThanOrEqual(21);
    expect(new Set(renewals.map((r) => r.fence))).toEqual(new Set([1]));
    expect(t.current('light', 'phase', T0 + 10 * LEASE + 50)).toMatchObject({ holder: 'a', fence: 1 });
  });

  it('a sibling waits out expiry plus grace, and then only takes it if it heard the device after the holder last did', () => {
    const t = new LeaseTable('b', LEASE, 400);
    t.observe('a', lease(T0, 3));
    expect(t.claim('light', 'phase', T0 + LEASE + 399, T0 + LEASE + 399)).toMatchObject({
      ok: false,
      holder: 'a',
      detail: expect.stringMatching(/plus 400 ms grace/) as string,
    });
    // Past the grace, but we have not heard the device since the holder renewed.
    expect(t.claim('light', 'phase', T0 + LEASE + 401, T0 - 1)).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/last holder a \(fence 3\) heard the device/) as string,
    });
    expect(t.claim('light', 'phase', T0 + LEASE + 401, T0 + 5)).toMatchObject({ ok: true, fence: 4, taken: true });
  });

  it("a device's fenced refusal stands, whatever the time, until the log shows another gateway's lease at that fence", () => {
    const t = new LeaseTable('a', LEASE);
    expect(t.claim('light', 'phase', T0)).toMatchObject({ ok: true, fence: 1 });
    t.fencedBy('light', 'phase', 'gw-b', 2, T0 + 10);
    for (const dt of [0, LEASE, 100 * LEASE]) {
      expect(t.claim('light', 'phase', T0 + 10 + dt, T0 + 10 + dt)).toMatchObject({
        ok: false,
        holder: 'device-report:gw-b',
        fence: 2,
      });
      expect(t.renewHeard('light', T0 + 10 + dt)).toEqual([]);
    }
    // Sync brings gw-b's lease at fence 2: from now on its expiry (plus grace) decides.
    const bAt = T0 + 100 * LEASE;
    t.observe('b', lease(bAt, 2));
    expect(t.claim('light', 'phase', bAt + LEASE, bAt + LEASE)).toMatchObject({ ok: false, holder: 'b' });
    expect(t.claim('light', 'phase', bAt + 2 * LEASE, bAt + 2 * LEASE)).toMatchObject({ ok: true, fence: 3 });
  });

  it('two gateways that took the same fence: each prefers its own (the device tells the loser)', () => {
    const t = new LeaseTable('b', LEASE);
    expect(t.claim('light', 'phase', T0)).toMatchObject({ ok: true, fence: 1 });
    t.observe('a', lease(T0 - 5, 1));
    expect(t.current('light', 'phase', T0 + 1)).toMatchObject({ holder: 'b', fence: 1 });
  });
});

interface Step {
  /** Virtual ms to the next step (at most half a lease, so a hearing holder renews in time). */
  readonly advance: number;
  readonly partitioned: boolean;
  /** Whether each gateway hears the device (and reaches it) during this step. */
  readonly hear: readonly [boolean, boolean];
  readonly decide: readonly [boolean, boolean];
}

interface Side {
  readonly name: string;
  readonly self: string;
  readonly act: Actuation;
  /** Lease records not yet carried to the other gateway by sync. */
  readonly outbox: LeaseRecord[];
  up: boolean;
}

/** Two gateways, one device, one schedule: the device's obeyed history by gateway. */
function run(steps: readonly Step[]): { obeyed: string[]; partitionStarts: number; outages: number } {
  const clock = new VirtualClock();
  const seeds = [randomBytes(32), randomBytes(32)] as const;
  const keys = seeds.map((s) => publicKeyFromSeed(s));
  const device = new Actuators({
    device: 'light',
    gateways: keys.map((publicKey, i) => ({ id: `gw-${i}`, publicKey })),
    initial: { phase: 'red' },
  });
  let seq = 0;
  const sides: Side[] = [];
  for (const i of [0, 1]) {
    const outbox: LeaseRecord[] = [];
    const side: Side = {
      name: `gw-${i}`,
      self: toHex(keys[i]!),
      outbox,
      up: true,
      act: new Actuation({
        signer: { gatewayId: `gw-${i}`, sign: (m) => signEd25519(seeds[i]!, m) },
        self: toHex(keys[i]!),
        clock,
        leaseMs: LEASE,
        heardWithinMs: LEASE,
        retryMinMs: 100,
        retryMaxMs: 400,
        journal: { record: (rs) => outbox.push(...rs.filter((r): r is LeaseRecord => r.type === 'lease')) },
        transport: {
          send: (_device, frame) => {
            if (!side.up) return false;
            const v = device.handle(frame, clock.now());
            if (v.commandId) {
              const ack: CommandAckBody = {
                type: 'command-ack',
                boot: 1,
                seq: seq++,
                commandId: v.commandId,
                status: v.status,
                ...(v.detail !== undefined && { detail: v.detail }),
              };
              // The ack comes back over the same link, if it is still up.
              clock.setTimeout(() => {
                if (!side.up) return;
                side.act.deviceHeard('light');
                side.act.commandAck('light', ack);
              }, 5);
            }
            return true;
          },
        },
      }),
    };
    sides.push(side);
  }
  let partitioned = false;
  let partitionStarts = 0;
  let outages = 0;
  let n = 0;
  for (const s of steps) {
    if (s.partitioned && !partitioned) partitionStarts++;
    partitioned = s.partitioned;
    sides.forEach((side, i) => {
      if (side.up && !s.hear[i]) outages++;
      side.up = s.hear[i]!;
      if (side.up) side.act.deviceHeard('light');
    });
    if (!partitioned)
      for (const [from, to] of [
        [sides[0]!, sides[1]!],
        [sides[1]!, sides[0]!],
      ] as const)
        for (const r of from.outbox.splice(0)) to.act.leases.observe(from.self, r);
    sides.forEach((side, i) => {
      if (!s.decide[i]) return;
      side.act.decide({
        rule: 'cycle',
        ruleVersion: 'v1',
        at: clock.now(),
        inputs: [],
        reason: 'test',
        action: { kind: 'command', command: { device: 'light', actuator: 'phase', value: `v${n++}`, ttlMs: 600 } },
      });
    });
    clock.advance(s.advance);
  }
  for (const side of sides) side.act.close();
  return { obeyed: device.history.map((h) => h.gateway), partitionStarts, outages };
}

const handOvers = (obeyed: readonly string[]): number => obeyed.filter((g, i) => i > 0 && g !== obeyed[i - 1]).length;

const step = (hear: fc.Arbitrary<boolean>, partitioned: fc.Arbitrary<boolean>, minAdvance = 20): fc.Arbitrary<Step> =>
  fc.record({
    advance: fc.integer({ min: minAdvance, max: LEASE / 2 }),
    partitioned,
    hear: fc.tuple(hear, hear),
    decide: fc.tuple(fc.boolean(), fc.boolean()),
  });

describe('lease stability over random schedules (two Actuations, one real device)', () => {
  it('property: the device obeys one holder between hand-overs, and each hand-over has a cause (a partition began or a link went down)', () => {
    fc.assert(
      fc.property(
        // Links up four times in five.
        fc.array(
          step(
            fc.nat(4).map((n) => n > 0),
            fc.boolean(),
          ),
          { minLength: 5, maxLength: 120 },
        ),
        (steps) => {
          const r = run(steps);
          expect(handOvers(r.obeyed)).toBeLessThanOrEqual(r.partitionStarts + r.outages);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('property: both always hear the device; one partition of ten lease periods or more hands the lease over at most once', () => {
    fc.assert(
      fc.property(
        fc.array(step(fc.constant(true), fc.constant(false)), { minLength: 2, maxLength: 10 }),
        // 40 to 60 steps of a quarter to half a lease: ten to thirty lease periods.
        fc.array(step(fc.constant(true), fc.constant(true), LEASE / 4), { minLength: 40, maxLength: 60 }),
        fc.array(step(fc.constant(true), fc.constant(false)), { minLength: 0, maxLength: 20 }),
        (before, during, after) => {
          const r = run([...before, ...during, ...after]);
          expect(handOvers(r.obeyed)).toBeLessThanOrEqual(1);
          expect(r.obeyed.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 25 },
    );
  });
});
