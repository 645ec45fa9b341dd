/**
 * One configured serial port: find it (by path, or by USB ids among the
 * ports present now), open it, deframe what arrives, hand each frame to
 * ingest and answer with a gateway-signed frame-ack once the outcome is final.
 * On error or unplug it closes and looks for the port again with backoff, so
 * a device that comes back (possibly as another /dev/ttyUSBn) is found again.
 *
 * Deframing, ingest and acks are the shared FrameStream (frame-stream.ts);
 * nothing waits per byte or per frame. Writes toward a device that does not
 * read are dropped past a small bound.
 */
import { existsSync, statSync } from 'node:fs';
import { SerialPort } from 'serialport';
import { type Deframer, type DeframerStats, encodeSerialFrame } from '../../protocols/index.js';
import { FrameStream, type FrameStreamSettings, type FrameStreamStats } from './frame-stream.js';
import { type Logger, LogThrottle } from '../logger.js';
import { type SerialPortInfo, matchesUsb, normalizeUsbId } from './serial-ports.js';

export interface SerialPortConfig {
  readonly path?: string | undefined;
  readonly vendorId?: string | number | undefined;
  readonly productId?: string | number | undefined;
  readonly serialNumber?: string | undefined;
  readonly baudRate: number;
  /** The device bound to this port: frames signed by any other device are rejected. */
  readonly device?: string | undefined;
  /** Label for logs; default the path or the USB ids. */
  readonly name?: string | undefined;
}

/** The FrameStream settings (ingest, gatewayId, sign, maxFrameBytes, maxInflight: frames of this link in flight before more are shed) and the link's own. */
export interface SerialLinkDeps extends FrameStreamSettings {
  readonly log: Logger;
  readonly list: () => Promise<SerialPortInfo[]>;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** Bytes queued toward the device past which acks and commands are dropped. */
  readonly maxWriteQueue: number;
  onDeviceSeen?(device: string, source: string): void;
  onLinkDown?(source: string): void;
  /** A firmware report arrived on this link (gateway/firmware/links.ts checks it). */
  onFirmware?(frame: Uint8Array, link: SerialLink): void;
}

export interface SerialLinkStats extends FrameStreamStats {
  opens: number;
  closes: number;
  openFailures: number;
  bytesOut: number;
  /** Acks or commands not written because the port was closed or its queue full. */
  writesDropped: number;
  commands: number;
}

/** How often an open port's device node is checked for (unplug detection). */
const PRESENCE_CHECK_MS = 500;

type State = 'idle' | 'searching' | 'opening' | 'open' | 'backoff' | 'closed';

export { ackStatusFor } from './frame-stream.js';

export class SerialLink {
  readonly name: string;
  private readonly stream: FrameStream;
  readonly stats: SerialLinkStats = {
    opens: 0,
    closes: 0,
    openFailures: 0,
    bytesIn: 0,
    bytesOut: 0,
    frames: 0,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    failed: 0,
    shed: 0,
    acks: 0,
    firmware: 0,
    writesDropped: 0,
    commands: 0,
  };
  /** Devices heard on this link (most recent last). */
  readonly devices = new Set<string>();
  private state: State = 'idle';
  private port: SerialPort | undefined;
  private currentPath: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** While open: checks that the device node still exists (see onOpen). */
  private presenceTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private lastNoise: DeframerStats;
  private noiseTimer: NodeJS.Timeout | undefined;
  private readonly throttle: LogThrottle;
  private closing: Promise<void> | undefined;
  /** Said once per absence that the port is not there. */
  private reportedMissing = false;

  constructor(
    readonly config: SerialPortConfig,
    private readonly deps: SerialLinkDeps,
  ) {
    this.name =
      config.name ??
      config.path ??
      `usb:${[normalizeUsbId(config.vendorId) ?? '*', normalizeUsbId(config.productId) ?? '*', config.serialNumber ?? '*'].join(':')}`;
    this.stream = new FrameStream(
      deps,
      {
        meta: () => ({
          transport: 'serial',
          source: this.currentPath ?? this.name,
          ...(this.config.device !== undefined && { claimedDevice: this.config.device }),
        }),
        write: (bytes) => this.write(bytes),
        onDevice: (device) => this.heard(device),
        ...(deps.onFirmware && { onFirmware: (frame: Uint8Array) => deps.onFirmware?.(frame, this) }),
      },
      this.stats,
    );
    this.lastNoise = { ...this.deframer.stats };
    this.backoffMs = deps.reconnectMinMs;
    this.throttle = new LogThrottle(deps.log, 5);
  }

  get deframer(): Deframer {
    return this.stream.deframer;
  }

  /** The device node in use, when open. */
  get path(): string | undefined {
    return this.state === 'open' ? this.currentPath : undefined;
  }
  get isOpen(): boolean {
    return this.state === 'open';
  }
  get status(): State {
    return this.state;
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.noiseTimer = setInterval(() => this.reportNoise(), 10_000);
    this.noiseTimer.unref();
    void this.connect();
  }

  /** A device is alive on this link (a stored frame, or a verified firmware report). */
  heard(device: string): void {
    this.devices.delete(device);
    this.devices.add(device);
    this.deps.onDeviceSeen?.(device, this.source());
  }

  /** Bytes queued toward the device past which writes are dropped. */
  get writeQueueLimit(): number {
    return this.deps.maxWriteQueue;
  }

  /** Queues one frame without waiting for it to drain; false when the port is closed or its queue full. */
  queue(frame: Uint8Array): boolean {
    return this.write(encodeSerialFrame(frame));
  }

  /** Writes one frame (a command, say) down the link; false if it could not be queued. */
  send(frame: Uint8Array): Promise<boolean> {
    const ok = this.write(encodeSerialFrame(frame));
    if (ok) this.stats.commands++;
    if (!ok) return Promise.resolve(false);
    const port = this.port!;
    return new Promise((resolve) => port.drain((err) => resolve(!err)));
  }

  async close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.state = 'closed';
    clearTimeout(this.timer);
    clearInterval(this.presenceTimer);
    clearInterval(this.noiseTimer);
    this.reportNoise();
    const port = this.port;
    this.port = undefined;
    this.closing = port?.isOpen ? new Promise<void>((resolve) => port.close(() => resolve())) : Promise.resolve();
    return this.closing;
  }

  private async connect(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'searching';
    let path: string | undefined;
    try {
      path = await this.findPath();
    } catch (err) {
      this.deps.log.debug({ port: this.name, err: (err as Error).message }, 'serial port lookup failed');
    }
    if (this.state !== 'searching') return; // closed meanwhile
    if (path === undefined) {
      if (!this.reportedMissing) {
        this.reportedMissing = true;
        this.deps.log.info({ port: this.name }, `serial port ${this.name} not present; waiting for it`);
      }
      return this.retry();
    }
    this.state = 'opening';
    const port = new SerialPort({ path, baudRate: this.config.baudRate, autoOpen: false, hupcl: false });
    port.open((err) => {
      if (this.state !== 'opening') {
        if (!err) port.close(() => {});
        return;
      }
      if (err) {
        this.stats.openFailures++;
        this.throttle.warn(
          `open:${this.name}`,
          { port: this.name, path, err: err.message },
          'serial port did not open; retrying',
        );
        return this.retry();
      }
      this.onOpen(port, path);
    });
  }

  private async findPath(): Promise<string | undefined> {
    const c = this.config;
    if (c.path !== undefined) return existsSync(c.path) ? c.path : undefined;
    const ports = await this.deps.list();
    return ports.find((p) => matchesUsb(p, c))?.path;
  }

  private onOpen(port: SerialPort, path: string): void {
    this.port = port;
    this.currentPath = path;
    this.state = 'open';
    this.stats.opens++;
    this.reportedMissing = false;
    this.backoffMs = this.deps.reconnectMinMs;
    this.stream.reset();
    this.deps.log.info(
      { port: this.name, path, baudRate: this.config.baudRate },
      `serial port ${this.name} open at ${path}`,
    );
    port.on('data', (chunk: Buffer) => this.stream.push(chunk));
    port.on('error', (err: Error) => this.deps.log.debug({ port: this.name, err: err.message }, 'serial port error'));
    port.on('close', () => this.onClose(port));
    // An unplugged adapter's node disappears; the open fd does not always report it
    // (HUP can go unnoticed by the poller), so look for the node itself as well. A node
    // unplugged and plugged back between two checks may come back under the same number
    // (ino and rdev reused): its creation time (ctime) tells the new node from the one open.
    const opened = nodeIdentity(path);
    clearInterval(this.presenceTimer);
    this.presenceTimer = setInterval(() => {
      if (this.port !== port || nodeIdentity(path) === opened) return;
      clearInterval(this.presenceTimer);
      this.deps.log.debug({ port: this.name, path }, 'serial device node is gone or was replaced');
      if (port.isOpen) port.close(() => {});
      else this.onClose(port);
    }, PRESENCE_CHECK_MS);
    this.presenceTimer.unref();
    // A lone delimiter ends whatever partial frame the device's receiver holds.
    this.write(Uint8Array.of(0));
  }

  private onClose(port: SerialPort): void {
    if (port !== this.port) return;
    clearInterval(this.presenceTimer);
    this.port = undefined;
    this.stats.closes++;
    this.deps.onLinkDown?.(this.source());
    if (this.state === 'closed') return;
    this.deps.log.warn(
      { port: this.name, path: this.currentPath },
      `serial port ${this.name} closed (unplugged?); looking for it again`,
    );
    this.retry();
  }

  private retry(): void {
    if (this.state === 'closed') return;
    this.state = 'backoff';
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.deps.reconnectMaxMs, this.backoffMs * 2);
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  private source(): string {
    return `serial:${this.name}`;
  }

  private write(bytes: Uint8Array): boolean {
    const port = this.port;
    if (!port || this.state !== 'open' || port.writableLength > this.deps.maxWriteQueue) {
      this.stats.writesDropped++;
      return false;
    }
    this.stats.bytesOut += bytes.length;
    port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return true;
  }

  private reportNoise(): void {
    const s = this.deframer.stats;
    const d = {
      badCrc: s.badCrc - this.lastNoise.badCrc,
      badCobs: s.badCobs - this.lastNoise.badCobs,
      oversize: s.oversize - this.lastNoise.oversize,
      runt: s.runt - this.lastNoise.runt,
      discardedBytes: s.discardedBytes - this.lastNoise.discardedBytes,
    };
    this.lastNoise = { ...s };
    if (d.badCrc + d.badCobs + d.oversize + d.runt > 0) {
      this.deps.log.warn(
        { port: this.name, path: this.currentPath, ...d, totals: { ...s } },
        `serial line noise on ${this.name}: frames dropped`,
      );
    }
  }
}

/** The device node behind `path` (a symlink is followed), or undefined when it is gone. */
function nodeIdentity(path: string): string | undefined {
  const st = statSync(path, { throwIfNoEntry: false });
  return st && `${st.ino}:${st.rdev}:${st.ctimeMs}`;
}
