/**
 * Interlocks at delivery: the engine refuses to *decide* two states that must never coincide,
 * but commands to different devices are delivered independently, so "sig-ns red" may still be
 * unacked (lost, retried) when "sig-ew green" is sent. The guard holds a command back while
 * another member of one of its interlocks *may* be in its forbidden state:
 *
 *   possible(actuator) = {last acked value} ∪ {values sent and still in flight}
 *                        ∪ {values sent whose command ended without an answer (expired,
 *                           superseded after sending): the device may have obeyed them}
 *
 * An ack resets an actuator to the value it acked (the device refuses anything issued before
 * what it last obeyed, so older doubts are gone); a refusal removes the refused value. An
 * actuator never acked is unknown and not held against (devices power on in a safe state).
 */
import type { CommandState } from '../../protocols/actuation.js';

export type Value = number | boolean | string;

export interface InterlockSpec {
  readonly id: string;
  /** At most one of these commanded states may hold at a time. */
  readonly never: readonly { readonly device: string; readonly actuator: string; readonly value: Value }[];
}

interface Slot {
  acked?: Value;
  readonly inflight: Map<string, Value>;
  readonly doubtful: Set<Value>;
}

const slotKey = (device: string, actuator: string): string => `${device}\u0000${actuator}`;

export class DeliveryGuard {
  private readonly slots = new Map<string, Slot>();
  private interlocks: readonly InterlockSpec[] = [];

  set(interlocks: readonly InterlockSpec[]): void {
    this.interlocks = interlocks;
  }

  get size(): number {
    return this.interlocks.length;
  }

  private slot(device: string, actuator: string): Slot {
    const k = slotKey(device, actuator);
    let s = this.slots.get(k);
    if (!s) this.slots.set(k, (s = { inflight: new Map(), doubtful: new Set() }));
    return s;
  }

  private mayBe(device: string, actuator: string, value: Value): boolean {
    const s = this.slots.get(slotKey(device, actuator));
    if (!s) return false;
    return s.acked === value || s.doubtful.has(value) || [...s.inflight.values()].includes(value);
  }

  /** Why `value` may not be sent to (device, actuator) now, or undefined when it may. */
  blocked(device: string, actuator: string, value: Value): string | undefined {
    for (const il of this.interlocks) {
      const mine = il.never.some((m) => m.device === device && m.actuator === actuator && m.value === value);
      if (!mine) continue;
      for (const o of il.never) {
        if (o.device === device && o.actuator === actuator) continue;
        if (this.mayBe(o.device, o.actuator, o.value))
          return `interlock ${il.id}: ${o.device}/${o.actuator} may still be ${String(o.value)}`;
      }
    }
    return undefined;
  }

  /** The command `key` was handed to the transport. */
  sent(key: string, device: string, actuator: string, value: Value): void {
    this.slot(device, actuator).inflight.set(key, value);
  }

  /** The command `key` ended; `attempts` > 0 when it was ever sent, `answered` when the device acked it (any status). */
  final(
    key: string,
    device: string,
    actuator: string,
    value: Value,
    state: CommandState,
    attempts: number,
    answered: boolean,
  ): void {
    const s = this.slots.get(slotKey(device, actuator));
    if (!s) return;
    s.inflight.delete(key);
    if (state === 'acked') {
      s.acked = value;
      s.doubtful.clear();
    } else if (attempts > 0 && !answered && (state === 'expired' || state === 'superseded')) s.doubtful.add(value);
  }
}
