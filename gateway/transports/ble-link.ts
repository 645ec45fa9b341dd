/**
 * One enrolled BLE device as the gateway sees it, through noble:
 *
 *     discovered → connecting → subscribed → lost → (backoff, seen again) → connecting …
 *
 * `connecting` covers the connection, the NUS service and characteristic
 * discovery and the TX subscription; one timer bounds all of it, so a device
 * that stops answering at any step ends as `lost` and frees its slot. TX
 * notifications go through the shared FrameStream (deframe, ingest, signed
 * acks), whose partial frame is dropped whenever the connection ends. Acks and
 * commands are written to RX without response, chunked to MTU − 3.
 *
 * Every listener this link puts on noble's objects is removed when the
 * attempt ends: a peripheral that flaps for days must not grow them.
 */
import type { EventEmitter } from 'node:events';
import {
  attPayload,
  BLE_DEFAULT_MTU,
  encodeSerialFrame,
  NUS_RX_UUID,
  NUS_SERVICE_UUID,
  NUS_TX_UUID,
} from '../../protocols/index.js';
import type { Logger } from '../logger.js';
import { FrameStream, type FrameStreamSettings, type FrameStreamStats } from './frame-stream.js';
import type { NobleCharacteristic, NoblePeripheral, NobleService } from './ble-noble.js';

// biome-ignore lint/suspicious/noExplicitAny: noble's emitters pass differently typed arguments per event; each listener narrows its own
type On = (emitter: EventEmitter, event: string, f: (...a: any[]) => void) => void;

export type BleDeviceState = 'discovered' | 'connecting' | 'subscribed' | 'lost';

/** The FrameStream settings (ingest, gatewayId, sign, maxFrameBytes, maxInflight) and the link's own. */
export interface BleLinkDeps extends FrameStreamSettings {
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  /** Whether the bindings can cancel a pending connection (HCI can; the websocket protocol cannot). */
  readonly canCancelConnect: boolean;
  /** The link's state changed (the transport frees slots and schedules on this). */
  onState(link: BleLink, from: BleDeviceState): void;
  onDeviceSeen?(device: string, source: string): void;
  onLinkDown?(source: string): void;
  /** Runs `fn`, whose writes go to the radio together where it can (ble-noble.ts batchWrites). */
  batch?(fn: () => void): void;
  /** Writes a frame to a peripheral's RX in ATT payloads of `att` bytes in one call where it can (ble-noble.ts writeRun). */
  writeRun?(peripheralUuid: string, bytes: Uint8Array, att: number): boolean;
  /** A firmware report arrived on this link (gateway/firmware/links.ts checks it). */
  onFirmware?(frame: Uint8Array, link: BleLink): void;
}

export interface BleLinkStats extends FrameStreamStats {
  connects: number;
  connectFailures: number;
  disconnects: number;
  bytesOut: number;
  /** Acks or commands not written because the device was not subscribed. */
  writesDropped: number;
  commands: number;
}

export class BleLink {
  state: BleDeviceState = 'discovered';
  /** When the state last changed (ms since the epoch). */
  since = Date.now();
  peripheral: NoblePeripheral;
  lastSeen = Date.now();
  rssi: number;
  mtu = BLE_DEFAULT_MTU;
  /** Consecutive failed attempts (reset once subscribed). */
  failures = 0;
  /** No new attempt before this time (backoff). */
  notBefore = 0;
  lastError: string | undefined;
  readonly stats: BleLinkStats = {
    bytesIn: 0,
    frames: 0,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    failed: 0,
    shed: 0,
    acks: 0,
    firmware: 0,
    connects: 0,
    connectFailures: 0,
    disconnects: 0,
    bytesOut: 0,
    writesDropped: 0,
    commands: 0,
  };
  readonly stream: FrameStream;
  private rx: NobleCharacteristic | undefined;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private cleanups: Array<() => void> = [];

  constructor(
    readonly deviceId: string,
    peripheral: NoblePeripheral,
    private readonly deps: BleLinkDeps,
  ) {
    this.peripheral = peripheral;
    this.rssi = peripheral.rssi;
    this.stream = new FrameStream(
      deps,
      {
        meta: () => ({ transport: 'ble', source: this.source, claimedDevice: deviceId }),
        write: (bytes) => this.write(bytes),
        onDevice: (device) => deps.onDeviceSeen?.(device, this.source),
        ...(deps.onFirmware && { onFirmware: (frame: Uint8Array) => deps.onFirmware?.(frame, this) }),
      },
      this.stats,
    );
  }

  get source(): string {
    return `ble:${this.deviceId}`;
  }
  /** Holds a connection slot (connecting or connected). */
  get holdsSlot(): boolean {
    return this.state === 'connecting' || this.state === 'subscribed';
  }

  /** Starts an attempt; the outcome arrives through deps.onState. */
  connect(): void {
    if (this.holdsSlot) return;
    const attempt = ++this.attempt;
    const p = this.peripheral;
    this.setState('connecting');
    this.timer = setTimeout(
      () => this.fail(attempt, `no answer within ${this.deps.connectTimeoutMs} ms`),
      this.deps.connectTimeoutMs,
    );
    const on: On = (emitter, event, f) => {
      emitter.on(event, f);
      this.cleanups.push(() => emitter.removeListener(event, f));
    };
    on(p, 'disconnect', () => this.onDisconnect(attempt));
    on(p, 'connect', (err?: Error) => {
      if (attempt !== this.attempt) return;
      if (err) return this.fail(attempt, `connect failed: ${err.message}`);
      this.stats.connects++;
      p.discoverServices([NUS_SERVICE_UUID]);
    });
    on(p, 'servicesDiscover', (services: NobleService[]) => {
      if (attempt !== this.attempt) return;
      const svc = services.find((s) => s.uuid === NUS_SERVICE_UUID);
      if (!svc) return this.fail(attempt, 'no Nordic UART Service');
      on(svc, 'characteristicsDiscover', (chars: NobleCharacteristic[]) => this.onCharacteristics(attempt, chars, on));
      svc.discoverCharacteristics([NUS_TX_UUID, NUS_RX_UUID]);
    });
    p.connect();
  }

  private onCharacteristics(attempt: number, chars: NobleCharacteristic[], on: On): void {
    if (attempt !== this.attempt) return;
    const tx = chars.find((c) => c.uuid === NUS_TX_UUID);
    const rx = chars.find((c) => c.uuid === NUS_RX_UUID);
    if (!tx || !rx) return this.fail(attempt, 'Nordic UART Service without TX and RX');
    on(tx, 'data', (data: Buffer) => {
      if (attempt === this.attempt) this.stream.push(data);
    });
    on(tx, 'notify', (enabled: boolean) => {
      if (attempt !== this.attempt || this.state !== 'connecting') return;
      if (!enabled) return this.fail(attempt, 'TX notifications refused');
      clearTimeout(this.timer);
      this.rx = rx;
      this.mtu = this.peripheral.mtu ?? BLE_DEFAULT_MTU;
      this.failures = 0;
      this.lastError = undefined;
      this.setState('subscribed');
      this.deps.log.info(
        { device: this.deviceId, address: this.peripheral.address, mtu: this.mtu, rssi: this.peripheral.rssi },
        `BLE ${this.deviceId}: subscribed (MTU ${this.mtu})`,
      );
      // A lone delimiter ends whatever partial frame the device's receiver holds.
      this.write(Uint8Array.of(0));
    });
    tx.subscribe();
  }

  /** Writes one frame (a command, say) to the device's RX; false if it is not subscribed. */
  send(frame: Uint8Array): boolean {
    const ok = this.write(encodeSerialFrame(frame));
    if (ok) this.stats.commands++;
    return ok;
  }

  /** Ends the connection here (transport closing, slot shared); the caller tells the radio. */
  close(why = 'closed'): void {
    if (this.holdsSlot) this.end(this.attempt, why, false);
  }

  private write(bytes: Uint8Array): boolean {
    const rx = this.rx;
    if (!rx || this.state !== 'subscribed') {
      this.stats.writesDropped++;
      return false;
    }
    const n = attPayload(this.mtu);
    if (!this.deps.writeRun?.(this.peripheral.id, bytes, n)) {
      const writeAll = (): void => {
        for (let i = 0; i < bytes.length; i += n) {
          const len = Math.min(n, bytes.length - i);
          rx.write(Buffer.from(bytes.buffer, bytes.byteOffset + i, len), true);
        }
      };
      if (bytes.length > n && this.deps.batch) this.deps.batch(writeAll);
      else writeAll();
    }
    this.stats.bytesOut += bytes.length;
    return true;
  }

  private onDisconnect(attempt: number): void {
    if (attempt !== this.attempt || !this.holdsSlot) return;
    this.stats.disconnects++;
    this.end(
      attempt,
      this.state === 'subscribed' ? 'disconnected' : 'disconnected while connecting',
      this.state === 'connecting',
    );
  }

  private fail(attempt: number, why: string): void {
    if (attempt !== this.attempt || !this.holdsSlot) return;
    this.end(attempt, why, true);
    // Take down whatever the radio still holds for this attempt.
    const p = this.peripheral;
    try {
      if (p.state === 'connecting' && this.deps.canCancelConnect && p.cancelConnect) p.cancelConnect();
      else p.disconnect();
    } catch (e) {
      this.deps.log.debug(
        { device: this.deviceId, err: (e as Error).message },
        'BLE disconnect after a failed attempt threw',
      );
    }
  }

  private end(attempt: number, why: string, failed: boolean): void {
    const wasSubscribed = this.state === 'subscribed';
    this.attempt = attempt + 1; // late events of this attempt are ignored
    clearTimeout(this.timer);
    for (const c of this.cleanups.splice(0)) c();
    this.rx = undefined;
    const partial = this.stream.deframer.buffered;
    this.stream.reset();
    if (failed) {
      this.failures++;
      this.stats.connectFailures++;
    }
    this.lastError = why;
    this.setState('lost');
    if (wasSubscribed) this.deps.onLinkDown?.(this.source);
    const log = failed ? this.deps.log.warn.bind(this.deps.log) : this.deps.log.info.bind(this.deps.log);
    log(
      { device: this.deviceId, reason: why, partialBytesDropped: partial, failures: this.failures },
      `BLE ${this.deviceId}: lost (${why})`,
    );
  }

  private setState(s: BleDeviceState): void {
    const from = this.state;
    if (from === s) return;
    this.state = s;
    this.since = Date.now();
    this.deps.log.debug({ device: this.deviceId, from, to: s }, `BLE ${this.deviceId}: ${from} → ${s}`);
    this.deps.onState(this, from);
  }
}
