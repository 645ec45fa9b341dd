/**
 * One virtual device as a BLE peripheral with the Nordic UART Service, as a
 * device's BLE stack would run it: frames go out as
 * COBS(frame ‖ CRC-32C) 0x00 in TX notifications of at most MTU − 3 bytes;
 * bytes the central writes to RX are deframed into gateway frame-acks
 * (checked against the gateway key when one is given) and commands.
 *
 * A frame leaves the device buffer only when its ack arrives. Unacked frames
 * are resent after `resendAfterMs`, and all of them each time the central
 * subscribes again (after a reconnect). The radio (ble-radio.ts) owns the
 * connection; this class is told when the central subscribes and leaves.
 */
import { chunkForMtu, Deframer, encodeManufacturerId, encodeSerialFrame } from '../../protocols/index.js';
import type { DeviceFrame, VirtualDevice } from '../device.js';
import { checkDownlink, type DownlinkTrust } from './downlink.js';
import { countAttempt, frameKey, IdleWaiters } from './uplink-buffer.js';

export interface SimPeripheralOptions extends DownlinkTrust {
  /** ATT MTU after the exchange (23 = no exchange, 247 = common maximum). */
  readonly mtu?: number;
  /** Advertise the device id as the local name (default) or in manufacturer data. */
  readonly advertiseAs?: 'name' | 'manufacturer';
  readonly rssi?: number;
  /** Resend a pending frame after this long without its ack (default 1000 ms). */
  readonly resendAfterMs?: number;
  readonly onCommand?: (frame: Uint8Array, device: VirtualDevice) => void;
}

export interface SimPeripheralStats {
  sent: number;
  resent: number;
  acked: number;
  staleAcks: number;
  badDownlink: number;
  commands: number;
  notifications: number;
  bytesOut: number;
  bytesIn: number;
  /** Largest single RX write seen (must fit MTU − 3). */
  maxWriteBytes: number;
  /** Times a central subscribed (connections that reached the byte pipe). */
  sessions: number;
}

export class SimPeripheral {
  readonly uuid: string;
  readonly address: string;
  readonly mtu: number;
  readonly stats: SimPeripheralStats = {
    sent: 0,
    resent: 0,
    acked: 0,
    staleAcks: 0,
    badDownlink: 0,
    commands: 0,
    notifications: 0,
    bytesOut: 0,
    bytesIn: 0,
    maxWriteBytes: 0,
    sessions: 0,
  };
  rssi: number;
  inRange = true;
  private readonly deframer = new Deframer();
  private readonly lastSent = new Map<string, number>();
  private notifyFn: ((chunk: Uint8Array) => void) | undefined;
  private resendTimer: NodeJS.Timeout | undefined;
  private readonly idle = new IdleWaiters();
  /** Notifications left before the radio link breaks (fault injection). */
  private cutAfter: number | undefined;
  /** Called by the radio to break the link (out of range). */
  onCut: (() => void) | undefined;

  constructor(
    readonly device: VirtualDevice,
    index: number,
    private readonly opts: SimPeripheralOptions = {},
  ) {
    const b = [0xc0, 0xde, (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff, 0x01];
    this.address = b.map((x) => x.toString(16).padStart(2, '0')).join(':');
    this.uuid = this.address.replaceAll(':', '');
    this.mtu = opts.mtu ?? 23;
    this.rssi = opts.rssi ?? -60;
  }

  /** The advertisement as noble's websocket protocol carries it. */
  advertisement(): { localName: string; serviceUuids: string[]; manufacturerData?: string } {
    const nus = '6e400001b5a3f393e0a9e50e24dcca9e';
    if (this.opts.advertiseAs === 'manufacturer')
      return {
        localName: 'NUS sensor',
        serviceUuids: [nus],
        manufacturerData: Buffer.from(encodeManufacturerId(this.device.id)).toString('hex'),
      };
    return { localName: this.device.id, serviceUuids: [nus] };
  }

  get subscribed(): boolean {
    return this.notifyFn !== undefined;
  }

  /** Takes a new frame: notified now if a central is subscribed, else on the next subscription. */
  send(frame: DeviceFrame): void {
    if (this.notifyFn) this.transmit(frame);
  }

  /**
   * Fault: the link breaks after `n` more notifications (so mid-frame when
   * n is smaller than a frame's chunk count), and the device goes out of range.
   */
  cutAfterNotifications(n: number): void {
    this.cutAfter = n;
  }

  /** Notifies arbitrary bytes (fault injection): chunked to the MTU, not tracked by the device. */
  sendRaw(bytes: Uint8Array): void {
    this.notifyRaw(bytes);
  }

  /** Resolves true when nothing is pending, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    return this.idle.wait(this.device.pendingCount === 0, timeoutMs);
  }

  /** The central subscribed to TX: `notify` puts one ATT payload on the air. */
  subscribe(notify: (chunk: Uint8Array) => void): void {
    this.notifyFn = notify;
    this.stats.sessions++;
    this.deframer.reset();
    const resendAfter = this.opts.resendAfterMs ?? 1000;
    this.resendTimer = setInterval(() => this.resendDue(resendAfter), Math.max(20, Math.min(250, resendAfter / 4)));
    this.resendTimer.unref();
    // End any partial frame at the central, then resend everything pending, oldest first.
    this.notifyRaw(Uint8Array.of(0));
    this.lastSent.clear();
    for (const f of this.device.pending()) this.transmit(f);
  }

  /** The connection ended (either side). */
  unsubscribe(): void {
    this.notifyFn = undefined;
    this.cutAfter = undefined;
    clearInterval(this.resendTimer);
    this.resendTimer = undefined;
    this.deframer.reset();
  }

  /** Bytes the central wrote to RX. */
  onWrite(bytes: Uint8Array): void {
    this.stats.bytesIn += bytes.length;
    if (bytes.length > this.stats.maxWriteBytes) this.stats.maxWriteBytes = bytes.length;
    for (const frame of this.deframer.push(bytes)) this.onDownlink(frame);
  }

  private transmit(frame: DeviceFrame): void {
    countAttempt(frame, this.stats);
    this.lastSent.set(frameKey(frame), Date.now());
    this.notifyRaw(encodeSerialFrame(frame.bytes));
  }

  private notifyRaw(bytes: Uint8Array): void {
    for (const chunk of chunkForMtu(bytes, this.mtu)) {
      const notify = this.notifyFn;
      if (!notify) return;
      if (this.cutAfter !== undefined && this.cutAfter-- <= 0) {
        this.cutAfter = undefined;
        this.onCut?.();
        return;
      }
      this.stats.notifications++;
      this.stats.bytesOut += chunk.length;
      notify(chunk);
    }
  }

  private resendDue(after: number): void {
    if (!this.notifyFn) return;
    const now = Date.now();
    for (const f of this.device.pending()) {
      const t = this.lastSent.get(frameKey(f));
      if (t === undefined || now - t >= after) this.transmit(f);
      if (!this.notifyFn) return;
    }
  }

  private onDownlink(frame: Uint8Array): void {
    const d = checkDownlink(frame, this.opts);
    if (d.kind === 'bad') {
      this.stats.badDownlink++;
    } else if (d.kind === 'command') {
      this.stats.commands++;
      this.opts.onCommand?.(frame, this.device);
    } else if (d.kind === 'ack') {
      this.lastSent.delete(frameKey(d));
      if (this.device.ack(d.boot, d.seq)) this.stats.acked++;
      else this.stats.staleAcks++;
      if (this.device.pendingCount === 0) this.idle.wake();
    }
  }
}
