/**
 * Bookkeeping the device transports (mqtt.ts, serial.ts, ble-peripheral.ts)
 * share around the device's buffer of unacked frames: the key a frame is
 * tracked by, the sent/resent count of one transmission, and the waiters a
 * `drain()` leaves until the link is idle.
 */
import type { DeviceFrame } from '../device.js';

/** The key a transport tracks a frame by: `boot:seq`. */
export const frameKey = (f: { boot: number; seq: number }): string => `${f.boot}:${f.seq}`;

/** Counts one transmission of `frame` as sent (first time) or resent, and bumps its attempts. */
export function countAttempt(frame: DeviceFrame, stats: { sent: number; resent: number }): void {
  if (frame.attempts > 0) stats.resent++;
  else stats.sent++;
  frame.attempts++;
}

/** Callers of `drain()` waiting for the link to go idle. */
export class IdleWaiters {
  private waiters: Array<() => void> = [];

  /** Resolves true at once when `idle`, else on the next `wake()`, or false if `timeoutMs` passes first. */
  wait(idle: boolean, timeoutMs: number): Promise<boolean> {
    if (idle) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(done);
    });
  }

  /** Resolves every waiter. */
  wake(): void {
    if (this.waiters.length === 0) return; // every ack wakes: no new array each time
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
