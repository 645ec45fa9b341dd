/**
 * rules/actuation: signed commands, ack tracking, retry with backoff until expiry,
 * final states, leases with fencing tokens, and the audit records read back as decisions.
 * Virtual clock; the device side is firmware-sim's real Actuators.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckStatus, type CommandAckBody, toHex } from '../../protocols/index.js';
import type { ActuationRecord } from '../../protocols/actuation.js';
import { Actuators } from '../../firmware-sim/actuators.js';
import { Actuation, type CommandOutcome, readDecisions } from '../../rules/actuation/index.js';
import { VirtualClock } from '../helpers/virtual-clock.js';
import type { Decision } from '../../rules/decision.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { ConfigError, validateConfig } from '../../gateway/config.js';

interface Gw {
  act: Actuation;
  journal: ActuationRecord[];
  outcomes: CommandOutcome[];
  sends: { device: string; at: number }[];
  id: string;
}

function gateway(
  clock: VirtualClock,
  name: string,
  route: (device: string, frame: Uint8Array, gw: Gw) => boolean,
  leaseMs = 30_000,
): Gw & { key: Uint8Array } {
  const seed = randomBytes(32);
  const key = publicKeyFromSeed(seed);
  const g = {
    journal: [] as ActuationRecord[],
    outcomes: [] as CommandOutcome[],
    sends: [] as { device: string; at: number }[],
    id: name,
  } as Gw & { key: Uint8Array };
  g.key = key;
  g.act = new Actuation({
    signer: { gatewayId: name, sign: (m) => signEd25519(seed, m) },
    self: toHex(key),
    transport: {
      send: (device, frame) => {
        g.sends.push({ device, at: clock.now() });
        return route(device, frame, g);
      },
    },
    journal: { record: (r) => g.journal.push(...r) },
    clock,
    leaseMs,
    retryMinMs: 100,
    retryMaxMs: 1000,
  });
  g.act.outcomes$.subscribe((o) => g.outcomes.push(o));
  return g;
}

let seq = 0;
const decision = (device: string, value: boolean | number, ttlMs = 2000, actuator = 'conveyor'): Decision => ({
  rule: 'stop-on-vibration',
  ruleVersion: 'v1',
  at: 1_700_000_000_000 + seq,
  inputs: [{ device, boot: 1, seq: seq++ }],
  reason: 'vib > 4',
  action: { kind: 'command', command: { device, actuator, value, ttlMs } },
});

/** A device behind a transport: obeys through real Actuators and answers through the (virtual) uplink. */
function deviceRoute(
  clock: VirtualClock,
  acts: Map<string, Actuators>,
  opts: { drop?: Map<string, number>; silent?: Set<string>; delayMs?: number } = {},
) {
  return (device: string, frame: Uint8Array, g: Gw): boolean => {
    const left = opts.drop?.get(device) ?? 0;
    if (left > 0) {
      opts.drop!.set(device, left - 1);
      return true; // handed to the transport, lost on the way
    }
    const a = acts.get(device);
    if (!a) return false;
    const v = a.handle(frame, clock.now());
    if (opts.silent?.has(device) || !v.commandId) return true;
    const ack: CommandAckBody = {
      type: 'command-ack',
      boot: 1,
      seq: seq++,
      commandId: v.commandId,
      status: v.status,
      ...(v.detail !== undefined && { detail: v.detail }),
    };
    clock.setTimeout(() => g.act.commandAck(device, ack), opts.delayMs ?? 5);
    return true;
  };
}

describe('actuation', () => {
  it('signs a command under a fresh lease, sends it, and ends acked when the device obeys (ack tracking, final state)', () => {
    const clock = new VirtualClock();
    const gws: Gw[] = [];
    const acts = new Map<string, Actuators>();
    const g = gateway(clock, 'gw-a', deviceRoute(clock, acts));
    gws.push(g);
    acts.set(
      'cell-1',
      new Actuators({ device: 'cell-1', gateways: [{ id: 'gw-a', publicKey: g.key }], initial: { conveyor: true } }),
    );
    g.act.deviceHeard('cell-1');
    g.act.decide(decision('cell-1', false));
    expect(g.act.awaitsAck('cell-1')).toBe(true);
    clock.advance(10);
    expect(g.act.awaitsAck('cell-1')).toBe(false);
    expect(acts.get('cell-1')!.get('conveyor')).toBe(false);
    expect(g.outcomes).toEqual([
      expect.objectContaining({
        state: 'acked',
        attempts: 1,
        ackStatus: AckStatus.ok,
        device: 'cell-1',
        actuator: 'conveyor',
        rule: 'stop-on-vibration',
      }),
    ]);
    expect(g.journal.map((r) => r.type)).toEqual(['lease', 'decision', 'outcome']);
    expect(g.journal[0]).toMatchObject({ type: 'lease', device: 'cell-1', actuator: 'conveyor', fence: 1 });
    // The audit reads back the decision the engine made, joined with its outcome.
    const { decisions } = readDecisions([{ author: toHex(g.key), body: g.journal }]);
    expect(decisions).toHaveLength(1);
    expect(decisions[0]).toMatchObject({
      rule: 'stop-on-vibration',
      ruleVersion: 'v1',
      reason: 'vib > 4',
      inputs: [{ device: 'cell-1', boot: 1 }],
      command: { fence: 1 },
      outcome: { state: 'acked', attempts: 1 },
    });
    expect(g.act.inFlight).toBe(0);
  });

  it('retries with doubling backoff until acked, and a device that never acks ends expired without holding up others', () => {
    const clock = new VirtualClock();
    const acts = new Map<string, Actuators>();
    const silent = new Set(['mute']);
    const g = gateway(clock, 'gw-a', deviceRoute(clock, acts, { drop: new Map([['cell-1', 2]]), silent }));
    for (const d of ['cell-1', 'mute', 'cell-2']) {
      acts.set(
        d,
        new Actuators({ device: d, gateways: [{ id: 'gw-a', publicKey: g.key }], initial: { conveyor: true } }),
      );
      g.act.deviceHeard(d);
    }
    g.act.decide(decision('mute', false, 1500));
    g.act.decide(decision('cell-1', false)); // its first two sends are lost
    clock.advance(1000);
    g.act.decide(decision('cell-2', false));
    clock.advance(20);
    const sendsTo = (d: string) => g.sends.filter((s) => s.device === d).map((s) => s.at - 1_700_000_000_000);
    expect(sendsTo('cell-1')).toEqual([0, 100, 300]); // 100 ms, then 200 ms
    expect(g.outcomes.map((o) => [o.device, o.state])).toEqual([
      ['cell-1', 'acked'],
      ['cell-2', 'acked'],
    ]);
    clock.advance(1000);
    expect(g.outcomes.at(-1)).toMatchObject({ device: 'mute', state: 'expired', detail: 'no ack before expiry' });
    expect(sendsTo('mute').length).toBeGreaterThan(3); // resent (backoff capped at 1 s) until it expired
    expect(g.act.stats).toMatchObject({ acked: 2, expired: 1 });
  });

  it('no route for a device never heard; a newer command supersedes an older one in flight', () => {
    const clock = new VirtualClock();
    const acts = new Map<string, Actuators>();
    const g = gateway(clock, 'gw-a', deviceRoute(clock, acts, { silent: new Set(['cell-1']) }));
    g.act.decide(decision('ghost', true));
    expect(g.outcomes[0]).toMatchObject({
      state: 'no-route',
      attempts: 0,
      detail: 'ghost never heard by this gateway',
    });
    expect(g.act.awaitsAck('ghost')).toBe(false);
    acts.set(
      'cell-1',
      new Actuators({ device: 'cell-1', gateways: [{ id: 'gw-a', publicKey: g.key }], initial: { conveyor: true } }),
    );
    g.act.deviceHeard('cell-1');
    g.act.decide(decision('cell-1', false));
    g.act.decide(decision('cell-1', true));
    expect(g.outcomes[1]).toMatchObject({ state: 'superseded', value: false });
    expect(g.act.inFlight).toBe(1);
  });

  it('a forged command reported by a device is counted and does not end our command', () => {
    const clock = new VirtualClock();
    const g = gateway(clock, 'gw-a', () => true);
    g.act.deviceHeard('cell-1');
    g.act.decide(decision('cell-1', false));
    const id = g.journal.find((r) => r.type === 'decision')!;
    const commandId = (id as { command: { id: Uint8Array } }).command.id;
    g.act.commandAck('cell-1', {
      type: 'command-ack',
      boot: 1,
      seq: 1,
      commandId,
      status: AckStatus.badSignature,
      detail: 'forged',
    });
    g.act.commandAck('cell-1', {
      type: 'command-ack',
      boot: 1,
      seq: 2,
      commandId: randomBytes(16),
      status: AckStatus.badSignature,
    });
    expect(g.act.stats.forgeryReports).toBe(2);
    expect(g.act.inFlight).toBe(1);
    g.act.commandAck('cell-1', { type: 'command-ack', boot: 1, seq: 3, commandId, status: AckStatus.ok });
    expect(g.outcomes[0]).toMatchObject({ state: 'acked' });
  });

  it("leases: a sibling's unexpired lease means no-lease, through its grace period too; then the next fence is higher; renewals keep the fence (fencing)", () => {
    const clock = new VirtualClock();
    const g = gateway(clock, 'gw-b', () => true, 1000);
    g.act.deviceHeard('cell-1');
    g.act.leases.observe('aa'.repeat(32), {
      type: 'lease',
      at: clock.now(),
      device: 'cell-1',
      actuator: 'conveyor',
      fence: 7,
      expires: clock.now() + 500,
    });
    g.act.decide(decision('cell-1', false));
    expect(g.outcomes[0]).toMatchObject({
      state: 'no-lease',
      detail: expect.stringMatching(/held by a{64} \(fence 7\) until .*, plus 500 ms grace/) as string,
    });
    clock.advance(501); // expired, but within the grace period (half the lease)
    g.act.deviceHeard('cell-1');
    g.act.decide(decision('cell-1', false));
    expect(g.outcomes[1]).toMatchObject({ state: 'no-lease' });
    clock.advance(500);
    g.act.deviceHeard('cell-1');
    g.act.decide(decision('cell-1', false));
    const leases = () => g.journal.filter((r) => r.type === 'lease');
    expect(leases()).toEqual([expect.objectContaining({ fence: 8, expires: clock.now() + 1000 })]);
    clock.advance(100);
    g.act.decide(decision('cell-1', true)); // more than half left: no new record
    expect(leases()).toHaveLength(1);
    clock.advance(500);
    g.act.deviceHeard('cell-1');
    g.act.decide(decision('cell-1', false)); // renewed, same fence
    expect(leases()).toHaveLength(2);
    expect(leases()[1]).toMatchObject({ fence: 8 });
    const decided = g.journal
      .filter((r) => r.type === 'decision')
      .map((r) => (r as { command?: { fence?: number } }).command?.fence);
    expect(decided).toEqual([undefined, undefined, 8, 8, 8]);
  });

  it('two partitioned gateways: the device obeys one fence holder, the other is refused as fenced and stands back', () => {
    const clock = new VirtualClock();
    const acts = new Map<string, Actuators>();
    const route = deviceRoute(clock, acts);
    const a = gateway(clock, 'gw-a', route);
    const b = gateway(clock, 'gw-b', route);
    acts.set(
      'light',
      new Actuators({
        device: 'light',
        gateways: [
          { id: 'gw-a', publicKey: a.key },
          { id: 'gw-b', publicKey: b.key },
        ],
        initial: { phase: 'red' },
      }),
    );
    for (const g of [a, b]) g.act.deviceHeard('light');
    a.act.decide(decision('light', 'green' as never, 2000, 'phase'));
    b.act.decide(decision('light', 'amber' as never, 2000, 'phase'));
    clock.advance(20);
    expect(acts.get('light')!.get('phase')).toBe('green');
    expect(b.outcomes[0]).toMatchObject({
      state: 'refused',
      ackStatus: AckStatus.fenced,
      detail: 'fence 1 refused: 1 is held by gw-a',
    });
    b.act.decide(decision('light', 'red' as never, 2000, 'phase'));
    expect(b.outcomes[1]).toMatchObject({
      state: 'no-lease',
      detail: expect.stringMatching(/the device reported fence 1 held by gw-a .* standing back/) as string,
    });
    a.act.decide(decision('light', 'red' as never, 2000, 'phase'));
    clock.advance(20);
    expect(acts.get('light')!.history.map((h) => h.gateway)).toEqual(['gw-a', 'gw-a']);
  });

  it('interlocks at delivery: a green is held until the conflicting head has acked red, and ends interlocked if it never does (interlocks)', () => {
    const clock = new VirtualClock();
    const acts = new Map<string, Actuators>();
    const silent = new Set<string>();
    const g = gateway(clock, 'gw-a', deviceRoute(clock, acts, { silent, delayMs: 50 }));
    for (const d of ['sig-ns', 'sig-ew']) {
      acts.set(
        d,
        new Actuators({ device: d, gateways: [{ id: 'gw-a', publicKey: g.key }], initial: { aspect: 'red' } }),
      );
      g.act.deviceHeard(d);
    }
    g.act.setInterlocks([
      {
        id: 'greens',
        never: [
          { device: 'sig-ns', actuator: 'aspect', value: 'green' },
          { device: 'sig-ew', actuator: 'aspect', value: 'green' },
        ],
      },
    ]);
    const aspect = (d: string, v: string) => g.act.decide(decision(d, v as never, 2000, 'aspect'));
    aspect('sig-ns', 'green');
    clock.advance(60);
    expect(acts.get('sig-ns')!.get('aspect')).toBe('green');
    // ns red goes out, its ack takes 50 ms: ew green waits for it instead of racing it.
    aspect('sig-ns', 'red');
    aspect('sig-ew', 'green');
    expect(g.sends.filter((s) => s.device === 'sig-ew')).toHaveLength(0);
    clock.advance(49);
    expect(acts.get('sig-ew')!.get('aspect')).toBe('red');
    clock.advance(2);
    expect(g.sends.filter((s) => s.device === 'sig-ew')).toHaveLength(1); // sent as soon as ns acked red
    clock.advance(60);
    expect(acts.get('sig-ew')!.get('aspect')).toBe('green');
    // ns green now waits for ew red, which never acks (the head is silent): held until expiry.
    silent.add('sig-ew');
    aspect('sig-ew', 'red');
    aspect('sig-ns', 'green');
    clock.advance(2100);
    expect(g.outcomes.find((o) => o.device === 'sig-ns' && o.value === 'green' && o.state !== 'acked')).toMatchObject({
      state: 'interlocked',
      attempts: 0,
      detail: expect.stringMatching(/interlock greens: sig-ew\/aspect may still be green/) as string,
    });
    expect(acts.get('sig-ns')!.get('aspect')).toBe('red');
    expect(g.act.stats.interlocked).toBe(1);
  });

  it('config actuation: defaults, bounds and unknown keys named', () => {
    expect(validateConfig({}).actuation).toEqual({
      leaseSeconds: 30,
      retryMinMs: 250,
      retryMaxMs: 4000,
      heardWithinSeconds: 60,
    });
    expect(validateConfig({ actuation: { leaseSeconds: 5 } }).actuation.leaseSeconds).toBe(5);
    expect(validateConfig({ actuation: { leaseGraceSeconds: 0 } }).actuation.leaseGraceSeconds).toBe(0);
    expect(() => validateConfig({ actuation: { leaseGraceSeconds: -1 } })).toThrow(ConfigError);
    expect(() => validateConfig({ actuation: { leaseSeconds: 0 } })).toThrow(ConfigError);
    expect(() => validateConfig({ actuation: { lease: 5 } })).toThrow(/actuation/);
  });

  it('property: whatever is decided, lost or delayed, the guarded heads are never green at once (interlocks)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('decide' as const),
        dev: fc.constantFrom('sig-ns', 'sig-ew'),
        value: fc.constantFrom('red', 'green', 'amber'),
        ttl: fc.integer({ min: 100, max: 3000 }),
      }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 700 }) }),
    );
    const link = fc.record({
      dropCommand: fc.boolean(),
      dropAck: fc.boolean(),
      delay: fc.integer({ min: 1, max: 400 }),
    });
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.array(link, { minLength: 1, maxLength: 30 }),
        (ops, links) => {
          const clock = new VirtualClock();
          const acts = new Map<string, Actuators>();
          let n = 0;
          let conflict = false;
          const g = gateway(clock, 'gw-a', (device, frame, gw) => {
            const l = links[n++ % links.length]!;
            if (l.dropCommand && n % 3 === 0) return true; // lost on the way
            clock.setTimeout(() => {
              const v = acts.get(device)!.handle(frame, clock.now());
              if (acts.get('sig-ns')!.get('aspect') === 'green' && acts.get('sig-ew')!.get('aspect') === 'green')
                conflict = true;
              if (!v.commandId || (l.dropAck && n % 2 === 0)) return; // the answer lost (a real device would resend it)
              const ack: CommandAckBody = {
                type: 'command-ack',
                boot: 1,
                seq: seq++,
                commandId: v.commandId,
                status: v.status,
              };
              clock.setTimeout(() => gw.act.commandAck(device, ack), l.delay);
            }, l.delay);
            return true;
          });
          for (const d of ['sig-ns', 'sig-ew'])
            acts.set(
              d,
              new Actuators({ device: d, gateways: [{ id: 'gw-a', publicKey: g.key }], initial: { aspect: 'red' } }),
            );
          g.act.setInterlocks([
            {
              id: 'greens',
              never: [
                { device: 'sig-ns', actuator: 'aspect', value: 'green' },
                { device: 'sig-ew', actuator: 'aspect', value: 'green' },
              ],
            },
          ]);
          for (const o of ops) {
            for (const d of ['sig-ns', 'sig-ew']) g.act.deviceHeard(d);
            if (o.kind === 'decide') g.act.decide(decision(o.dev, o.value as never, o.ttl, 'aspect'));
            else clock.advance(o.ms);
            expect(conflict).toBe(false);
          }
          clock.advance(10_000);
          expect(conflict).toBe(false);
          expect(g.act.inFlight).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
