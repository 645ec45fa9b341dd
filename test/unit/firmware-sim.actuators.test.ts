/**
 * firmware-sim actuators: a device obeys a command signed by a trusted gateway,
 * and refuses (with a signed command-ack saying why) forged, expired, replayed, fenced,
 * stale and unknown-actuator commands.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AckStatus, decodeBody, decodeSign1, sigStructure } from '../../protocols/index.js';
import { Actuators, commandHandler } from '../../firmware-sim/actuators.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { checkDownlink } from '../../firmware-sim/transports/downlink.js';
import { actuatorsFlag } from '../../firmware-sim/cli-common.js';
import { signCommand } from '../../rules/actuation/command.js';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';

const T0 = 1_700_000_000_000;
const gwSeedA = randomBytes(32);
const gwSeedB = randomBytes(32);
const gwA = { gatewayId: 'gw-a', sign: (m: Uint8Array) => signEd25519(gwSeedA, m) };
const gwB = { gatewayId: 'gw-b', sign: (m: Uint8Array) => signEd25519(gwSeedB, m) };
const trusted = [
  { id: 'gw-a', publicKey: publicKeyFromSeed(gwSeedA) },
  { id: 'gw-b', publicKey: publicKeyFromSeed(gwSeedB) },
];
let n = 0;
const cmd = (
  over: {
    value?: number | boolean | string;
    actuator?: string;
    device?: string;
    issued?: number;
    ttl?: number;
    fence?: number;
    id?: Uint8Array;
  } = {},
  signer = gwA,
) =>
  signCommand(
    {
      device: over.device ?? 'cell-1',
      actuator: over.actuator ?? 'conveyor',
      value: over.value ?? false,
      ttlMs: over.ttl ?? 5000,
    },
    {
      id: over.id ?? randomBytes(16),
      issued: over.issued ?? T0 + ++n,
      ...(over.fence !== undefined && { fence: over.fence }),
    },
    signer,
  ).frame;
const acts = (capacity?: number) =>
  new Actuators({
    device: 'cell-1',
    gateways: trusted,
    initial: { conveyor: true, speed: 1 },
    ...(capacity && { seenCapacity: capacity }),
  });

describe('firmware-sim actuators', () => {
  it('obeys a command signed by a trusted gateway, within its expiry (DESIGN: commands carry id, target, actuator, value, expiry)', () => {
    const a = acts();
    const v = a.handle(cmd({ value: false, fence: 1 }), T0);
    expect(v).toMatchObject({ status: AckStatus.ok, executed: true, gateway: 'gw-a' });
    expect(a.get('conveyor')).toBe(false);
    expect(a.records()).toContainEqual({ n: 'act.conveyor', vb: false });
    expect(a.handle(cmd({ actuator: 'speed', value: 0.25, fence: 1 }), T0).executed).toBe(true);
    expect(a.get('speed')).toBe(0.25);
  });

  it('refuses a forged command (unknown key, or a trusted kid with a wrong signature) and still reports its id', () => {
    const a = acts();
    const rogue = { gatewayId: 'gw-x', sign: (m: Uint8Array) => signEd25519(randomBytes(32), m) };
    const id = randomBytes(16);
    const v1 = a.handle(cmd({ id }, rogue), T0);
    expect(v1).toMatchObject({
      status: AckStatus.badSignature,
      executed: false,
      detail: expect.stringMatching(/not signed by a trusted gateway/) as string,
    });
    expect(v1.commandId).toEqual(new Uint8Array(id));
    const impostor = { gatewayId: 'gw-a', sign: rogue.sign };
    expect(a.handle(cmd({}, impostor), T0)).toMatchObject({
      status: AckStatus.badSignature,
      detail: expect.stringMatching(/gw-a's key/) as string,
    });
    const flipped = cmd();
    flipped[flipped.length - 1]! ^= 1;
    expect(a.handle(flipped, T0).status).toBe(AckStatus.badSignature);
    expect(a.get('conveyor')).toBe(true);
  });

  it('refuses an expired command by the device clock (skew included)', () => {
    const a = acts();
    expect(a.handle(cmd({ issued: T0, ttl: 1000 }), T0 + 1001)).toMatchObject({
      status: AckStatus.expired,
      detail: expect.stringMatching(/1 ms ago/) as string,
    });
    expect(a.handle(cmd({ issued: T0, ttl: 1000 }), T0 + 1000).status).toBe(AckStatus.ok);
  });

  it('never obeys one command id twice, and bounded memory refuses what it cannot remember', () => {
    const a = acts(4);
    const frame = cmd({ value: false });
    expect(a.handle(frame, T0).executed).toBe(true);
    expect(a.handle(cmd({ value: true }), T0).executed).toBe(true);
    expect(a.handle(frame, T0)).toMatchObject({ status: AckStatus.replayed, executed: false });
    expect(a.get('conveyor')).toBe(true);
    // Fill the memory: the first ids are evicted; a replay of them is still refused (floor).
    const first = cmd({ ttl: 1000 });
    a.handle(first, T0);
    for (let i = 0; i < 6; i++) a.handle(cmd({ ttl: 2000 + i }), T0);
    expect(a.handle(first, T0)).toMatchObject({ status: AckStatus.replayed, detail: 'older than the replay memory' });
  });

  it('keeps the highest fence: a lower fence, or the same fence from another gateway, is refused (fencing tokens)', () => {
    const a = acts();
    expect(a.handle(cmd({ fence: 5, value: false }), T0).executed).toBe(true);
    expect(a.handle(cmd({ fence: 4, value: true }, gwB), T0)).toMatchObject({
      status: AckStatus.fenced,
      detail: expect.stringMatching(/refused: 5 is held by gw-a/) as string,
    });
    expect(a.handle(cmd({ fence: 5, value: true }, gwB), T0).status).toBe(AckStatus.fenced);
    expect(a.handle(cmd({ value: true }), T0).status).toBe(AckStatus.fenced); // no fence at all once fenced
    expect(a.get('conveyor')).toBe(false);
    expect(a.handle(cmd({ fence: 6, value: true }, gwB), T0).executed).toBe(true);
    expect(a.handle(cmd({ fence: 5, value: false }), T0).status).toBe(AckStatus.fenced);
    expect(a.fence('conveyor')).toBe(6);
  });

  it('refuses a stale command (issued before the last one obeyed), unknown actuators, wrong types and other targets', () => {
    const a = acts();
    expect(a.handle(cmd({ issued: T0 + 100, value: false }), T0).executed).toBe(true);
    expect(a.handle(cmd({ issued: T0 + 50, value: true }), T0)).toMatchObject({
      status: AckStatus.rejected,
      detail: expect.stringMatching(/stale/) as string,
    });
    expect(a.handle(cmd({ actuator: 'valve' }), T0).status).toBe(AckStatus.unknownActuator);
    expect(a.handle(cmd({ value: 'fast' }), T0)).toMatchObject({
      status: AckStatus.rejected,
      detail: 'conveyor takes a boolean',
    });
    expect(a.handle(cmd({ device: 'cell-2' }), T0)).toMatchObject({
      status: AckStatus.rejected,
      detail: 'addressed to cell-2',
    });
    expect(a.stats).toMatchObject({ obeyed: 1, refused: { rejected: 3, unknownActuator: 1 } });
  });

  it('answers with a command-ack signed by the device, kept in its unacked buffer like a reading', () => {
    const seed = randomBytes(32);
    const device = new VirtualDevice({
      id: 'cell-1',
      seed,
      model: 'press-vib-1',
      signer: 'node',
      powerOnMs: Date.now(),
    });
    const sent: Uint8Array[] = [];
    const id = randomBytes(16);
    const handler = commandHandler(acts(), device, (f) => sent.push(f.bytes));
    handler(
      signCommand(
        { device: 'cell-1', actuator: 'conveyor', value: false, ttlMs: 5000 },
        { id, issued: Date.now(), fence: 1 },
        gwA,
      ).frame,
    );
    expect(sent).toHaveLength(1);
    const cose = decodeSign1(sent[0]!);
    if (!cose.ok) throw new Error('bad ack');
    expect(
      verifyEd25519(
        publicKeyFromSeed(seed),
        sigStructure(cose.value.protectedBytes, cose.value.payload),
        cose.value.signature,
      ),
    ).toBe(true);
    expect(decodeBody(cose.value.payload)).toMatchObject({
      ok: true,
      value: { type: 'command-ack', commandId: new Uint8Array(id), status: AckStatus.ok },
    });
    expect(device.pendingCount).toBe(1);
    // Readings now carry the actuator state.
    const reading = decodeBody(
      decodeSign1(device.nextFrame().bytes).ok
        ? (decodeSign1(device.nextFrame().bytes) as { value: { payload: Uint8Array } }).value.payload
        : new Uint8Array(),
    );
    expect(JSON.stringify(reading)).toContain('act.conveyor');
  });

  it('a byte-stream link hands a forged command on (so it is refused and reported), not drops it', () => {
    const forged = cmd({}, { gatewayId: 'gw-a', sign: (m) => signEd25519(randomBytes(32), m) });
    expect(checkDownlink(forged, { gatewayPublicKey: trusted[0]!.publicKey, gatewayId: 'gw-a' })).toMatchObject({
      kind: 'command',
      verified: false,
    });
    expect(checkDownlink(cmd(), { gatewayPublicKey: trusted[0]!.publicKey, gatewayId: 'gw-a' })).toMatchObject({
      kind: 'command',
      verified: true,
    });
  });

  it('--actuators parses name=initial pairs and needs the gateway it obeys', () => {
    const gw = { gatewayKey: trusted[0]!.publicKey, gatewayId: 'gw-a' };
    expect(actuatorsFlag(Error, 'conveyor=true,speed=1.5,phase=red', gw)).toEqual({
      actuators: { '*': { conveyor: true, speed: 1.5, phase: 'red' } },
    });
    expect(
      actuatorsFlag(Error, join(import.meta.dirname, '../../rules/examples/factory-cell/actuators.json'), gw),
    ).toEqual({ actuators: { 'conveyor-01': { speed: 1 } } });
    expect(() => actuatorsFlag(Error, 'conveyor=true', {})).toThrow(/needs --gateway-key and --gateway-id/);
    expect(() => actuatorsFlag(Error, 'conveyor', gw)).toThrow(/not name=initial-value/);
    expect(actuatorsFlag(Error, undefined, {})).toEqual({});
  });
});
