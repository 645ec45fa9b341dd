/**
 * A virtual device's actuators (relays, motor speeds, signal heads) and the checks a real
 * device makes before it obeys a downlink command (DESIGN "Downlink command / ack"):
 *
 *   1. signature: the COSE_Sign1 verifies under a trusted gateway key (kid = gateway id);
 *   2. addressed to this device, and the actuator exists and takes that kind of value;
 *   3. expiry on the device's own clock (drift and skew included);
 *   4. replay: a command id seen before is never obeyed twice;
 *   5. fence: per actuator the device keeps the highest (fence, gateway) it obeyed; a lower
 *      fence, or the same fence from another gateway, is refused, so two gateways that both
 *      think they hold the lease cannot both drive it;
 *   6. order: from the same lease holder, a command issued before the last one obeyed is stale.
 *
 * Every command whose id can be read is answered with a signed command-ack (status and a
 * detail saying why), including forged ones, so refusals are reported. Memory is bounded:
 * ids are remembered until their expiry, at most `seenCapacity`; evicting the one that expires
 * first raises a floor at or below which any command is refused as a possible replay.
 */
import {
  AckStatus,
  type CommandBody,
  decodeBody,
  decodeSign1,
  kidToDeviceId,
  type SenmlRecord,
  sigStructure,
  toHex,
} from '../protocols/index.js';
import { verifySignature } from './crypto.js';
import type { DeviceFrame, VirtualDevice } from './device.js';

export type ActuatorValue = number | boolean | string;

export interface TrustedGateway {
  readonly id: string;
  readonly publicKey: Uint8Array;
}

export interface ActuatorsOptions {
  readonly device: string;
  /** Gateways whose commands are obeyed (siblings on a site: each signs with its own key). */
  readonly gateways: readonly TrustedGateway[];
  /** The actuators and their power-on states; the type of each state is the type it accepts. */
  readonly initial: Readonly<Record<string, ActuatorValue>>;
  /** Command ids remembered (default 1024). */
  readonly seenCapacity?: number;
}

export interface CommandVerdict {
  /** AckStatus code of the answer. */
  readonly status: number;
  readonly detail?: string;
  /** The id to name in the ack; undefined when the command could not be read at all (no ack). */
  readonly commandId?: Uint8Array;
  readonly executed: boolean;
  readonly command?: CommandBody;
  /** The gateway whose signature held. */
  readonly gateway?: string;
}

export interface ActuatorStats {
  obeyed: number;
  refused: Record<string, number>;
}

const STATUS_NAME = new Map<number, string>(Object.entries(AckStatus).map(([k, v]) => [v, k]));

export class Actuators {
  readonly stats: ActuatorStats = { obeyed: 0, refused: {} };
  private readonly state = new Map<string, ActuatorValue>();
  private readonly fences = new Map<string, { fence: number; gateway: string; issued: number }>();
  /** id hex → expires. */
  private readonly seen = new Map<string, number>();
  private floor = -1;
  private readonly capacity: number;
  /** Every state change, oldest first (tests and the CLI read it). */
  readonly history: { at: number; actuator: string; value: ActuatorValue; gateway: string }[] = [];

  constructor(private readonly opts: ActuatorsOptions) {
    for (const [k, v] of Object.entries(opts.initial)) this.state.set(k, v);
    this.capacity = opts.seenCapacity ?? 1024;
  }

  get(actuator: string): ActuatorValue | undefined {
    return this.state.get(actuator);
  }

  states(): Record<string, ActuatorValue> {
    return Object.fromEntries(this.state);
  }

  /** Highest fence obeyed for an actuator (0 if none). */
  fence(actuator: string): number {
    return this.fences.get(actuator)?.fence ?? 0;
  }

  /** The actuator states as SenML records (`act.<name>`), appended to every reading. */
  records(): SenmlRecord[] {
    return [...this.state].map(([k, v]) =>
      typeof v === 'number'
        ? { n: `act.${k}`, v }
        : typeof v === 'boolean'
          ? { n: `act.${k}`, vb: v }
          : { n: `act.${k}`, vs: v },
    );
  }

  /** Checks and (if every check holds) carries out one downlink command frame. */
  handle(frame: Uint8Array, deviceTimeMs: number): CommandVerdict {
    const verdict = this.check(frame, deviceTimeMs);
    if (verdict.executed) this.stats.obeyed++;
    else {
      const name = STATUS_NAME.get(verdict.status) ?? String(verdict.status);
      this.stats.refused[name] = (this.stats.refused[name] ?? 0) + 1;
    }
    return verdict;
  }

  private check(frame: Uint8Array, now: number): CommandVerdict {
    const cose = decodeSign1(frame);
    if (!cose.ok) return { status: AckStatus.rejected, detail: `undecodable: ${cose.error.code}`, executed: false };
    const { kid, protectedBytes, payload, signature } = cose.value;
    const body = decodeBody(payload);
    const cmd = body.ok && body.value.type === 'command' ? body.value : undefined;
    const gatewayId = kidToDeviceId(kid);
    const gw = this.opts.gateways.find((g) => g.id === gatewayId);
    if (!gw || !verifySignature(gw.publicKey, sigStructure(protectedBytes, payload), signature)) {
      // Answered (so the forgery is reported) but nothing in it is believed.
      return {
        status: AckStatus.badSignature,
        detail: gw
          ? `signature does not verify under ${gw.id}'s key`
          : `not signed by a trusted gateway (kid ${gatewayId ?? toHex(kid)})`,
        executed: false,
        ...(cmd && { commandId: cmd.id }),
      };
    }
    if (!cmd)
      return {
        status: AckStatus.rejected,
        detail: body.ok ? `not a command: ${body.value.type}` : `bad body: ${body.error.code}`,
        executed: false,
      };
    const base = { commandId: cmd.id, command: cmd, gateway: gw.id };
    if (cmd.target !== this.opts.device)
      return { ...base, status: AckStatus.rejected, detail: `addressed to ${cmd.target}`, executed: false };
    const current = this.state.get(cmd.actuator);
    if (current === undefined)
      return {
        ...base,
        status: AckStatus.unknownActuator,
        detail: `no actuator ${cmd.actuator} (have ${[...this.state.keys()].join(', ')})`,
        executed: false,
      };
    if (typeof cmd.value !== typeof current)
      return {
        ...base,
        status: AckStatus.rejected,
        detail: `${cmd.actuator} takes a ${typeof current}`,
        executed: false,
      };
    if (now > cmd.expires)
      return {
        ...base,
        status: AckStatus.expired,
        detail: `expired ${now - cmd.expires} ms ago by the device clock`,
        executed: false,
      };
    const idHex = toHex(cmd.id);
    this.prune(now);
    if (this.seen.has(idHex))
      return { ...base, status: AckStatus.replayed, detail: 'command id already seen', executed: false };
    if (cmd.expires <= this.floor)
      return { ...base, status: AckStatus.replayed, detail: 'older than the replay memory', executed: false };
    this.remember(idHex, cmd.expires);
    const held = this.fences.get(cmd.actuator);
    const fence = cmd.fence ?? 0;
    if (held && (fence < held.fence || (fence === held.fence && held.gateway !== gw.id))) {
      return {
        ...base,
        status: AckStatus.fenced,
        detail: `fence ${fence} refused: ${held.fence} is held by ${held.gateway}`,
        executed: false,
      };
    }
    if (held && fence === held.fence && cmd.issued < held.issued) {
      return {
        ...base,
        status: AckStatus.rejected,
        detail: `stale: issued before the last command obeyed on ${cmd.actuator}`,
        executed: false,
      };
    }
    this.fences.set(cmd.actuator, { fence, gateway: gw.id, issued: cmd.issued });
    this.state.set(cmd.actuator, cmd.value);
    this.history.push({ at: now, actuator: cmd.actuator, value: cmd.value, gateway: gw.id });
    if (this.history.length > 1000) this.history.shift();
    return { ...base, status: AckStatus.ok, executed: true };
  }

  private remember(idHex: string, expires: number): void {
    this.seen.set(idHex, expires);
    if (this.seen.size <= this.capacity) return;
    // Forget the id that expires first, so the floor (refuse anything expiring at or below it) stays as low as possible.
    let least: [string, number] | undefined;
    for (const e of this.seen) if (!least || e[1] < least[1]) least = e;
    this.seen.delete(least![0]);
    this.floor = Math.max(this.floor, least![1]);
  }

  /** Ids past their expiry can go (the expiry check refuses them anyway); only scanned when full. */
  private prune(now: number): void {
    if (this.seen.size < this.capacity) return;
    for (const [id, exp] of this.seen) if (exp < now) this.seen.delete(id);
  }
}

/**
 * The `onCommand` hook of a device link (MQTT, serial, BLE): checks the command, and answers
 * any command it could read with a signed command-ack sent like a reading (kept until acked).
 */
export function commandHandler(
  actuators: Actuators,
  device: VirtualDevice,
  send: (ack: DeviceFrame) => void,
  onVerdict?: (v: CommandVerdict) => void,
): (frame: Uint8Array) => void {
  device.actuatorRecords = () => actuators.records();
  return (frame) => {
    const now = Date.now();
    const v = actuators.handle(frame, device.deviceTime(now));
    onVerdict?.(v);
    if (v.commandId) send(device.commandAck(v.commandId, v.status, v.detail, now));
  };
}
