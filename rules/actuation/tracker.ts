/**
 * In-flight commands: each one is sent over the device's transport, resent with doubling
 * backoff until it is acked or expires, and ends in exactly one final state. Each command has
 * its own timer, so a device that never answers holds up nothing but its own command.
 *
 * Ack handling (a command-ack is an uplink frame: it reaches us through ingest, durable):
 *   ok                → acked
 *   expired (device)  → expired
 *   badSignature      → not final: someone sent the device a forgery with our id; ours still counts
 *   replayed          → not final: our resend crossed the device's answer, which is on its way
 *   fenced / other    → refused, with the device's detail
 */
import { AckStatus, type CommandAckBody } from '../../protocols/index.js';
import type { CommandState } from '../../protocols/actuation.js';
import type { SignedCommand } from './command.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface CommandTransport {
  /** Hands a signed command to the device's own transport; false (or a rejection) when there is no route now. */
  send(device: string, frame: Uint8Array): boolean | Promise<boolean>;
}

export interface FinalOutcome {
  readonly command: SignedCommand;
  readonly state: CommandState;
  readonly attempts: number;
  readonly ackStatus?: number;
  readonly detail?: string;
  readonly at: number;
  /** Decision to final state, ms. */
  readonly latencyMs: number;
}

interface InFlight {
  readonly command: SignedCommand;
  readonly started: number;
  attempts: number;
  /** Why it is being held back (an interlock), while it is. */
  held?: string;
  delay: number;
  timer?: unknown;
  expiry?: unknown;
  done: boolean;
}

export interface TrackerOptions {
  readonly transport: CommandTransport;
  readonly clock: Clock;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly onFinal: (o: FinalOutcome) => void;
  /** A refusal report that does not end the command (forgery, replay), or an ack for no command in flight. */
  readonly onReport?: (device: string, ack: CommandAckBody, inFlight: boolean) => void;
  /** Called when a frame is handed to the transport (first attempt only): latency measurement. */
  readonly onSent?: (command: SignedCommand, attempt: number) => void;
  /** Why a command may not be sent now (delivery interlock), or undefined. */
  readonly guard?: (command: SignedCommand) => string | undefined;
}

export class CommandTracker {
  private readonly inflight = new Map<string, InFlight>();
  /** (device, actuator) → key of the newest command in flight on it. */
  private readonly latest = new Map<string, string>();

  constructor(private readonly opts: TrackerOptions) {}

  get size(): number {
    return this.inflight.size;
  }

  /** Starts tracking and sending a command; an older command on the same actuator is superseded. */
  start(command: SignedCommand): void {
    const { clock } = this.opts;
    const slot = `${command.body.target}\u0000${command.body.actuator}`;
    const older = this.latest.get(slot);
    if (older !== undefined)
      this.finish(older, 'superseded', { detail: 'a newer command for the same actuator was issued' });
    this.latest.set(slot, command.key);
    const f: InFlight = { command, started: clock.now(), attempts: 0, delay: this.opts.retryMinMs, done: false };
    this.inflight.set(command.key, f);
    f.expiry = clock.setTimeout(
      () => {
        if (f.attempts > 0) this.finish(command.key, 'expired', { detail: 'no ack before expiry' });
        else if (f.held !== undefined)
          this.finish(command.key, 'interlocked', { detail: `held until expiry: ${f.held}` });
        else this.finish(command.key, 'no-route', { detail: 'device not reachable before expiry' });
      },
      Math.max(0, command.body.expires - clock.now()),
    );
    this.attempt(f);
  }

  /** Tries every held command again now (an ack may have cleared its interlock). */
  retryHeld(): void {
    for (const f of [...this.inflight.values()]) {
      if (f.held === undefined || f.done) continue;
      this.opts.clock.clearTimeout(f.timer);
      this.attempt(f);
    }
  }

  private attempt(f: InFlight): void {
    if (f.done) return;
    const { clock } = this.opts;
    const held = this.opts.guard?.(f.command);
    if (held !== undefined) {
      // Not sent: look again soon (and at once when an ack arrives, through retryHeld).
      f.held = held;
      const wait = this.opts.retryMinMs;
      if (clock.now() + wait < f.command.body.expires) f.timer = clock.setTimeout(() => this.attempt(f), wait);
      return;
    }
    f.held = undefined;
    let result: boolean | Promise<boolean>;
    try {
      result = this.opts.transport.send(f.command.body.target, f.command.frame);
    } catch {
      result = false;
    }
    const after = (sent: boolean): void => {
      if (f.done) return;
      if (sent) {
        f.attempts++;
        if (f.attempts === 1) this.opts.onSent?.(f.command, f.attempts);
      }
      // Next try after the backoff, unless the command expires first.
      const wait = Math.min(f.delay, this.opts.retryMaxMs);
      f.delay = Math.min(f.delay * 2, this.opts.retryMaxMs);
      if (clock.now() + wait < f.command.body.expires) f.timer = clock.setTimeout(() => this.attempt(f), wait);
    };
    if (typeof result === 'boolean') after(result);
    else result.then(after, () => after(false));
  }

  /** A command-ack from `device` (already verified and durable). */
  onAck(device: string, ack: CommandAckBody, hexId: string): void {
    const f = this.inflight.get(hexId);
    if (!f || f.command.body.target !== device) {
      this.opts.onReport?.(device, ack, false);
      return;
    }
    const extra = { ackStatus: ack.status, ...(ack.detail !== undefined && { detail: ack.detail }) };
    switch (ack.status) {
      case AckStatus.ok:
        return this.finish(hexId, 'acked', extra);
      case AckStatus.expired:
        return this.finish(hexId, 'expired', extra);
      case AckStatus.badSignature:
      case AckStatus.replayed:
        return this.opts.onReport?.(device, ack, true);
      default:
        return this.finish(hexId, 'refused', extra);
    }
  }

  private finish(key: string, state: CommandState, extra: { ackStatus?: number; detail?: string } = {}): void {
    const f = this.inflight.get(key);
    if (!f || f.done) return;
    f.done = true;
    const { clock } = this.opts;
    clock.clearTimeout(f.timer);
    clock.clearTimeout(f.expiry);
    this.inflight.delete(key);
    const slot = `${f.command.body.target}\u0000${f.command.body.actuator}`;
    if (this.latest.get(slot) === key) this.latest.delete(slot);
    const at = clock.now();
    this.opts.onFinal({ command: f.command, state, attempts: f.attempts, at, latencyMs: at - f.started, ...extra });
  }

  /** Ends every command in flight (gateway shutdown): they are reported as expired. */
  close(): void {
    for (const key of [...this.inflight.keys()]) this.finish(key, 'expired', { detail: 'gateway stopped' });
  }
}
