/**
 * An updatable device on a serial line (a pty from socat in tests, a USB-serial adapter for
 * real): the gateway's offers and chunks and the device's reports are frames of the line's
 * COBS stream (update-stream.ts). On every (re)open the device says where it is, so a
 * transfer cut by an unplug resumes from its offset; the port is reopened by itself.
 *
 * `pace` reads no faster than the baud rate (10 bits per byte, 8N1), which a pty does not
 * enforce: the line backs up into the gateway's write queue as a real UART would.
 */
import { SerialPort } from 'serialport';
import { UpdatableDevice, type UpdatableDeviceOptions } from './update.js';
import { UpdateStream } from './update-stream.js';

export interface UpdateSerialOptions extends Omit<UpdatableDeviceOptions, 'send'> {
  readonly path: string;
  readonly baudRate?: number;
  /** Retry period while the tty is absent or fails (default 250 ms). */
  readonly reopenMs?: number;
  readonly pace?: boolean;
  /** Fault: the first chunk at each offset arrives with a flipped data byte (update-stream.ts). */
  readonly corruptChunksAt?: readonly number[];
}

export class UpdateSerialLink {
  readonly device: UpdatableDevice;
  readonly stream: UpdateStream;
  private port: SerialPort | undefined;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private readonly baudRate: number;
  private paceT0 = 0;
  private paceRead = 0;

  constructor(private readonly o: UpdateSerialOptions) {
    this.baudRate = o.baudRate ?? 115200;
    this.stream = new UpdateStream(() => this.device, o.corruptChunksAt);
    this.device = new UpdatableDevice({
      // 12 × 2 KiB framed stays under the gateway serial link's 32 KiB in flight; a report every
      // 6 chunks leaves 6 on the line while it travels.
      chunkSize: 2048,
      window: 12,
      ...o,
      send: (report) => {
        if (this.port?.isOpen) this.port.write(Buffer.from(this.stream.frame(report)));
      },
    });
  }

  start(): this {
    this.device.boot();
    this.stopped = false;
    this.open();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.device.stop();
    clearTimeout(this.timer);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private open(): void {
    if (this.stopped) return;
    const port = new SerialPort({ path: this.o.path, baudRate: this.baudRate, autoOpen: false, hupcl: false });
    port.open((err) => {
      if (this.stopped) {
        if (!err) port.close(() => {});
        return;
      }
      if (err) {
        this.timer = setTimeout(() => this.open(), this.o.reopenMs ?? 250);
        return;
      }
      this.port = port;
      this.stream.deframer.reset();
      this.paceT0 = performance.now();
      this.paceRead = 0;
      port.on('data', (chunk: Buffer) => this.onData(port, chunk));
      port.on('error', () => {});
      port.on('close', () => {
        if (this.port !== port) return;
        this.port = undefined;
        if (!this.stopped) this.timer = setTimeout(() => this.open(), this.o.reopenMs ?? 250);
      });
      // End any partial frame at the gateway, then say where the device stands.
      port.write(Buffer.of(0));
      this.device.connected();
    });
  }

  private onData(port: SerialPort, chunk: Buffer): void {
    this.stream.push(chunk);
    if (!this.o.pace) return;
    // Ahead of what the line could have carried: stop reading until the line catches up.
    const now = performance.now();
    const lineMs = (this.paceRead * 10 * 1000) / this.baudRate;
    if (now - this.paceT0 > lineMs) this.paceT0 = now - lineMs; // an idle line saves up no capacity
    this.paceRead += chunk.length;
    const dueMs = (this.paceRead * 10 * 1000) / this.baudRate - (now - this.paceT0);
    if (dueMs > 1) {
      port.pause();
      setTimeout(() => port.resume(), dueMs).unref();
    }
  }
}
