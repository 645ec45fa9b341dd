/**
 * An updatable device as a BLE peripheral of the simulated radio (transports/ble-radio.ts),
 * with the Nordic UART Service: the gateway writes its offers and chunks to RX as frames of
 * the COBS stream, the device notifies its reports on TX in ATT payloads of at most MTU − 3
 * bytes (update-stream.ts does the framing). It asks for chunks that fit its MTU
 * (`bleChunkBytes`: 16 ATT payloads framed) and a window of BLE_WINDOW chunks, what its
 * receive buffer holds. Each time the central subscribes (a reconnect) the device says where
 * it is, so a download resumes from its offset.
 */
import { bleChunkBytes, bleWindow } from '../protocols/firmware-transfer.js';
import { chunkForMtu, NUS_SERVICE_UUID } from '../protocols/index.js';
import type { RadioPeripheral } from './transports/ble-radio.js';
import { UpdatableDevice, type UpdatableDeviceOptions } from './update.js';
import { UpdateStream } from './update-stream.js';

export interface UpdatePeripheralOptions extends Omit<UpdatableDeviceOptions, 'send' | 'chunkSize' | 'window'> {
  /** ATT MTU after the exchange (23 = no exchange, 247 = common maximum). */
  readonly mtu?: number;
  readonly rssi?: number;
  /** Fault: the first chunk at each offset arrives with a flipped data byte (update-stream.ts). */
  readonly corruptChunksAt?: readonly number[];
}

export class UpdatePeripheral implements RadioPeripheral {
  readonly uuid: string;
  readonly address: string;
  readonly mtu: number;
  readonly rssi: number;
  inRange = true;
  onCut: (() => void) | undefined;
  readonly device: UpdatableDevice;
  readonly stream: UpdateStream;
  readonly stats = { notifications: 0, bytesOut: 0, bytesIn: 0, maxWriteBytes: 0, sessions: 0 };
  private notifyFn: ((chunk: Uint8Array) => void) | undefined;

  constructor(
    index: number,
    private readonly o: UpdatePeripheralOptions,
  ) {
    const b = [0xc0, 0xfe, (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff, 0x02];
    this.address = b.map((x) => x.toString(16).padStart(2, '0')).join(':');
    this.uuid = this.address.replaceAll(':', '');
    this.mtu = o.mtu ?? 23;
    this.rssi = o.rssi ?? -60;
    this.stream = new UpdateStream(() => this.device, o.corruptChunksAt);
    this.device = new UpdatableDevice({
      ...o,
      chunkSize: bleChunkBytes(this.mtu),
      window: bleWindow(this.mtu),
      send: (report) => this.notify(this.stream.frame(report)),
    });
  }

  /** Power-on (before the radio lets a central connect). */
  start(): this {
    this.device.boot();
    return this;
  }

  stop(): void {
    this.device.stop();
  }

  get subscribed(): boolean {
    return this.notifyFn !== undefined;
  }

  advertisement(): { localName: string; serviceUuids: string[] } {
    return { localName: this.o.id, serviceUuids: [NUS_SERVICE_UUID] };
  }

  subscribe(notify: (chunk: Uint8Array) => void): void {
    this.notifyFn = notify;
    this.stats.sessions++;
    this.stream.deframer.reset();
    // End any partial frame at the central, then say where the device stands.
    this.notify(Uint8Array.of(0));
    this.device.connected();
  }

  unsubscribe(): void {
    this.notifyFn = undefined;
    this.stream.deframer.reset();
  }

  onWrite(bytes: Uint8Array): void {
    this.stats.bytesIn += bytes.length;
    if (bytes.length > this.stats.maxWriteBytes) this.stats.maxWriteBytes = bytes.length;
    this.stream.push(bytes);
  }

  private notify(bytes: Uint8Array): void {
    for (const chunk of chunkForMtu(bytes, this.mtu)) {
      const fn = this.notifyFn;
      if (!fn) return;
      this.stats.notifications++;
      this.stats.bytesOut += chunk.length;
      fn(chunk);
    }
  }
}
