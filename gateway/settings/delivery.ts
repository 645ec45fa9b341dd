/**
 * Sending desired settings to a device until it reports them: a signed settings message
 * (protocols/settings.ts) over the transport the device last used with this gateway, resent
 * with a doubling backoff (`retryMinMs` → `retryMaxMs`) while its reported values differ,
 * at once again when the desired values change or the device comes back after a silence.
 * No lease is needed: the device keeps per key the value of the highest version it applied,
 * so gateways that deliver at the same time, or one that delivers a stale value, cannot make
 * it go back; the version is the fence.
 */
import { randomBytes } from 'node:crypto';
import { encodeSign1, deviceIdToKid, toHex, type CommandAckBody } from '../../protocols/index.js';
import { encodeSettingsMessage, type SettingEntry } from '../../protocols/settings.js';

export interface SettingsTransport {
  send(device: string, frame: Uint8Array): boolean | Promise<boolean>;
}

export interface DeliveryOptions {
  readonly gatewayId: string;
  readonly sign: (m: Uint8Array) => Uint8Array;
  readonly transport: SettingsTransport;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** How long a message is valid on the device's clock. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

export interface DeliveryState {
  attempts: number;
  delay: number;
  /** Earliest time of the next send. */
  nextAt: number;
  lastSent?: number;
  /** Id (hex) of the last message sent. */
  lastId?: string;
  lastAck?: { status: number; detail?: string; at: number };
}

export interface DeliveryStats {
  sent: number;
  noRoute: number;
  acked: number;
  refused: number;
}

export class SettingsDelivery {
  readonly stats: DeliveryStats = { sent: 0, noRoute: 0, acked: 0, refused: 0 };
  private readonly state = new Map<string, DeliveryState>();
  private readonly now: () => number;

  constructor(private readonly opts: DeliveryOptions) {
    this.now = opts.now ?? Date.now;
  }

  of(device: string): Readonly<DeliveryState> | undefined {
    return this.state.get(device);
  }

  /** The next send goes out at once, then backs off from the start (new desired values, device back). */
  reset(device: string): void {
    const s = this.state.get(device);
    if (s) {
      s.delay = this.opts.retryMinMs;
      s.nextAt = 0;
    }
  }

  /** Settled: nothing to resend (reported equals desired). */
  settled(device: string): void {
    this.reset(device);
  }

  /** Sends `entries` if the backoff allows now; true when a message went out. */
  async offer(device: string, entries: readonly SettingEntry[]): Promise<boolean> {
    const now = this.now();
    let s = this.state.get(device);
    if (!s) this.state.set(device, (s = { attempts: 0, delay: this.opts.retryMinMs, nextAt: 0 }));
    if (now < s.nextAt || entries.length === 0) return false;
    // Claimed before the send, so a second offer in the meantime waits its turn.
    s.nextAt = now + s.delay;
    s.delay = Math.min(s.delay * 2, this.opts.retryMaxMs);
    const id = randomBytes(16);
    const payload = encodeSettingsMessage({
      type: 'settings',
      id,
      target: device,
      issued: now,
      expires: now + this.opts.ttlMs,
      entries,
    });
    const frame = encodeSign1({ kid: deviceIdToKid(this.opts.gatewayId), payload }, this.opts.sign);
    let sent = false;
    try {
      sent = await this.opts.transport.send(device, frame);
    } catch {
      sent = false;
    }
    if (!sent) {
      this.stats.noRoute++;
      return false;
    }
    this.stats.sent++;
    s.attempts++;
    s.lastSent = now;
    s.lastId = toHex(id);
    return true;
  }

  /** A command-ack from `device`; true when it answers our last settings message. */
  onAck(device: string, ack: CommandAckBody): boolean {
    const s = this.state.get(device);
    if (!s || s.lastId !== toHex(ack.commandId)) return false;
    s.lastAck = { status: ack.status, at: this.now(), ...(ack.detail !== undefined && { detail: ack.detail }) };
    if (ack.status === 0) this.stats.acked++;
    else this.stats.refused++;
    return true;
  }
}
