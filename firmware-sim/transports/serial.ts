/**
 * Serial uplink for one virtual device, as a device on a UART would run it:
 * frames go out as COBS(frame ‖ CRC-32C) 0x00 (protocols/serial-framing.ts),
 * through an optional noise injector, to a tty (a pty from socat in tests, a
 * USB-serial adapter for real). Gateway frame-acks come back on the same
 * line; a frame leaves the device buffer only when an ack for its
 * (boot, seq) arrives. Acks are checked against the gateway's public key when
 * one is given; without one they are accepted unverified and counted as such.
 *
 * Unacked frames are resent after `resendAfterMs` without an ack, and all of
 * them right after the port is (re)opened. The port is reopened by itself
 * after errors or when the tty goes away and comes back.
 */
import { SerialPort } from 'serialport';
import { AckStatus, Deframer, encodeSerialFrame } from '../../protocols/index.js';
import type { DeviceFrame, VirtualDevice } from '../device.js';
import { NoiseInjector, type NoiseOptions } from '../noise.js';
import { checkDownlink } from './downlink.js';
import { countAttempt, frameKey, IdleWaiters } from './uplink-buffer.js';

export interface SerialDeviceLinkOptions {
  /** The tty to open, e.g. /dev/pts/3 or a socat link name. */
  readonly path: string;
  readonly baudRate?: number;
  /** The gateway's Ed25519 public key: acks not signed by it are ignored. */
  readonly gatewayPublicKey?: Uint8Array;
  /** When set, acks must carry this kid. */
  readonly gatewayId?: string;
  /** Resend a pending frame after this long without its ack (default 1000 ms). */
  readonly resendAfterMs?: number;
  /** Retry period while the tty is absent or fails (default 250 ms). */
  readonly reopenMs?: number;
  /** Noise on what this device sends. */
  readonly noise?: NoiseOptions;
  /** Write no faster than the baud rate (10 bits per byte, 8N1); a pty does not enforce it. */
  readonly pace?: boolean;
  /** Downlink frames other than frame-acks (commands), after the signature check. */
  readonly onCommand?: (frame: Uint8Array, device: VirtualDevice) => void;
  readonly onError?: (error: Error, device: VirtualDevice) => void;
}

export interface SerialLinkStats {
  sent: number;
  resent: number;
  /** Acks that removed a frame from the device buffer. */
  acked: number;
  /** Acks accepted without a signature check (no gateway key given). */
  unverifiedAcks: number;
  /** Downlink frames refused: bad signature, wrong kid, undecodable. */
  badDownlink: number;
  /** Acks for frames no longer pending (a duplicate ack after a resend). */
  staleAcks: number;
  /** Acks with a non-ok status (duplicate, rejected, …), by status code. */
  ackStatus: Record<number, number>;
  commands: number;
  opens: number;
  closes: number;
  errors: number;
  bytesOut: number;
  bytesIn: number;
}

/** Most bytes queued for the pacer before resends wait for the next round. */
const PACE_QUEUE_LIMIT = 8192;

export class SerialDeviceLink {
  readonly stats: SerialLinkStats = {
    sent: 0,
    resent: 0,
    acked: 0,
    unverifiedAcks: 0,
    badDownlink: 0,
    staleAcks: 0,
    ackStatus: {},
    commands: 0,
    opens: 0,
    closes: 0,
    errors: 0,
    bytesOut: 0,
    bytesIn: 0,
  };
  readonly deframer = new Deframer();
  readonly noise: NoiseInjector | undefined;
  lastError: Error | undefined;

  private port: SerialPort | undefined;
  private open = false;
  private stopped = true;
  private readonly lastSent = new Map<string, number>();
  private reopenTimer: NodeJS.Timeout | undefined;
  private resendTimer: NodeJS.Timeout | undefined;
  private paceTimer: NodeJS.Timeout | undefined;
  private paceQueue: Buffer[] = [];
  private paceQueued = 0;
  private paceT0 = 0;
  private paceSent = 0;
  private readonly resendAfterMs: number;
  private readonly baudRate: number;
  private readonly idle = new IdleWaiters();

  constructor(
    readonly device: VirtualDevice,
    private readonly opts: SerialDeviceLinkOptions,
  ) {
    this.resendAfterMs = opts.resendAfterMs ?? 1000;
    this.baudRate = opts.baudRate ?? 115200;
    this.noise = opts.noise && opts.noise.rate > 0 ? new NoiseInjector(opts.noise) : undefined;
  }

  get connected(): boolean {
    return this.open;
  }
  /** Bytes waiting in the pacer (0 when not pacing). */
  get queuedBytes(): number {
    return this.paceQueued;
  }
  /** Whether acks are checked against a gateway key. */
  get verifiesAcks(): boolean {
    return this.opts.gatewayPublicKey !== undefined;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const every = Math.max(20, Math.min(250, this.resendAfterMs / 4));
    this.resendTimer = setInterval(() => this.resendDue(), every);
    this.openPort();
  }

  /** Puts a new frame on the line now if the port is open; otherwise it goes out on the next open. */
  send(frame: DeviceFrame): void {
    if (this.open) this.transmit(frame);
  }

  /** Writes arbitrary bytes (fault injection), not framed, not through the noise injector. */
  writeRaw(bytes: Uint8Array): void {
    if (this.open) this.port?.write(Buffer.from(bytes));
  }

  /** Resolves true when the device has nothing pending, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    return this.idle.wait(this.device.pendingCount === 0, timeoutMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reopenTimer);
    clearInterval(this.resendTimer);
    clearInterval(this.paceTimer);
    this.paceQueue = [];
    this.paceQueued = 0;
    const port = this.port;
    this.port = undefined;
    this.open = false;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private openPort(): void {
    if (this.stopped) return;
    const port = new SerialPort({ path: this.opts.path, baudRate: this.baudRate, autoOpen: false, hupcl: false });
    port.open((err) => {
      if (this.stopped) {
        if (!err) port.close(() => {});
        return;
      }
      if (err) {
        this.fail(err);
        this.reopenTimer = setTimeout(() => this.openPort(), this.opts.reopenMs ?? 250);
        return;
      }
      this.port = port;
      this.open = true;
      this.stats.opens++;
      this.deframer.reset();
      port.on('data', (chunk: Buffer) => this.onData(chunk));
      port.on('error', (e: Error) => this.fail(e));
      port.on('close', () => this.onClose(port));
      // End any partial frame at the gateway, then resend everything still pending, oldest first.
      this.writeWire(Uint8Array.of(0), false);
      this.lastSent.clear();
      for (const f of this.device.pending()) this.transmit(f);
    });
  }

  private onClose(port: SerialPort): void {
    if (port !== this.port) return;
    this.port = undefined;
    this.open = false;
    this.stats.closes++;
    this.paceQueue = [];
    this.paceQueued = 0;
    if (!this.stopped) this.reopenTimer = setTimeout(() => this.openPort(), this.opts.reopenMs ?? 250);
  }

  private transmit(frame: DeviceFrame): void {
    countAttempt(frame, this.stats);
    this.lastSent.set(frameKey(frame), Date.now());
    this.writeWire(encodeSerialFrame(frame.bytes), true);
  }

  private resendDue(): void {
    if (!this.open) return;
    const now = Date.now();
    for (const f of this.device.pending()) {
      if (this.opts.pace && this.paceQueued > PACE_QUEUE_LIMIT) return;
      const t = this.lastSent.get(frameKey(f));
      if (t === undefined || now - t >= this.resendAfterMs) this.transmit(f);
    }
  }

  private writeWire(bytes: Uint8Array, noisy: boolean): void {
    const out = noisy && this.noise ? this.noise.apply(bytes) : bytes;
    if (out.length === 0) return;
    const buf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    if (!this.opts.pace) {
      this.stats.bytesOut += buf.length;
      this.port?.write(buf);
      return;
    }
    this.paceQueue.push(buf);
    this.paceQueued += buf.length;
    if (!this.paceTimer) {
      this.paceT0 = performance.now();
      this.paceSent = 0;
      this.paceTimer = setInterval(() => this.paceTick(), 2);
    }
  }

  /** Sends what the line could have carried since the pacer started (10 bits per byte). */
  private paceTick(): void {
    const port = this.port;
    if (!port || this.paceQueue.length === 0) {
      clearInterval(this.paceTimer);
      this.paceTimer = undefined;
      return;
    }
    const budget = Math.floor(((performance.now() - this.paceT0) / 1000) * (this.baudRate / 10)) - this.paceSent;
    let left = budget;
    const parts: Buffer[] = [];
    while (left > 0 && this.paceQueue.length > 0) {
      const head = this.paceQueue[0]!;
      if (head.length <= left) {
        parts.push(head);
        this.paceQueue.shift();
        left -= head.length;
      } else {
        parts.push(head.subarray(0, left));
        this.paceQueue[0] = head.subarray(left);
        left = 0;
      }
    }
    const n = budget - left;
    if (n <= 0) return;
    this.paceSent += n;
    this.paceQueued -= n;
    this.stats.bytesOut += n;
    port.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  private onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    for (const frame of this.deframer.push(chunk)) this.onDownlink(frame);
  }

  private onDownlink(frame: Uint8Array): void {
    const d = checkDownlink(frame, this.opts);
    if (d.kind === 'bad') {
      this.stats.badDownlink++;
      return;
    }
    if (d.kind === 'retry') return; // not final: keep it and resend
    if (d.kind === 'ack') {
      const { boot, seq, status } = d;
      if (!d.verified) this.stats.unverifiedAcks++;
      if (status !== AckStatus.ok) this.stats.ackStatus[status] = (this.stats.ackStatus[status] ?? 0) + 1;
      this.lastSent.delete(frameKey({ boot, seq }));
      if (this.device.ack(boot, seq)) this.stats.acked++;
      else this.stats.staleAcks++;
      if (this.device.pendingCount === 0) this.idle.wake();
      return;
    }
    this.stats.commands++;
    try {
      this.opts.onCommand?.(frame, this.device);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private fail(e: Error): void {
    this.stats.errors++;
    this.lastError = e;
    try {
      this.opts.onError?.(e, this.device);
    } catch {
      // the hook's own failure must not stop the link
    }
  }
}
