/**
 * A simulated BLE radio: a websocket server speaking noble's websocket binding
 * protocol (node_modules/@abandonware/noble/lib/websocket/bindings.js — the
 * central sends JSON `{action, …}` commands, the radio answers with JSON
 * `{type, …}` events), with the virtual devices as Nordic UART Service
 * peripherals. A gateway running the real noble library connects to it as
 * its radio, so noble's Peripheral/Service/Characteristic code runs in tests.
 *
 * Modelled: advertising (every `advertiseIntervalMs` while in range and not
 * connected, filtered by the central's scan UUIDs), connect (a pending
 * connect completes when the device is in range; `disconnect` cancels it),
 * the MTU (an extra `{type: 'mtu'}` event before `connect`, the way noble's
 * HCI binding reports it), service and characteristic discovery, TX
 * notify, RX write (with and without response), disconnect, RSSI, and going
 * out of range (the connection drops, advertising stops) and back. Besides
 * noble's JSON `write`, a run of RX writes may come as one binary message
 * (protocols/radio-writes.ts; announced with `{type: 'features'}` first): each
 * payload is still handed to the peripheral as its own ATT write. A central that
 * answers `{action: 'features', notifications: 'binary'}` gets TX notifications
 * in binary too, so both directions cost the same (noble's JSON carries hex).
 *
 * `peakConnections` counts connections at the radio, independent of what the
 * central believes. Listens on an ephemeral port by default (noble's own
 * binding expects 2846; the gateway points noble at `url` instead).
 */
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { NUS_RX_UUID, NUS_SERVICE_UUID, NUS_TX_UUID } from '../../protocols/index.js';
import { decodeRadioWrites, encodeRadioNotification } from '../../protocols/radio-writes.js';
import type { VirtualDevice } from '../device.js';
import { SimPeripheral, type SimPeripheralOptions } from './ble-peripheral.js';

export interface BleRadioOptions {
  readonly host?: string;
  /** 0 (default): an ephemeral port. */
  readonly port?: number;
  readonly advertiseIntervalMs?: number;
  /** Time from a connect command (device in range) to the connect event. */
  readonly connectDelayMs?: number;
  /**
   * Announce binary writes and notifications (protocols/radio-writes.ts; default true). false: a
   * radio that speaks noble's JSON alone, as noble's own ws-slave.js does, to check the central
   * falls back.
   */
  readonly binaryWrites?: boolean;
}

interface Command {
  action: string;
  peripheralUuid?: string;
  serviceUuid?: string;
  characteristicUuid?: string;
  serviceUuids?: string[];
  data?: string;
  withoutResponse?: boolean;
  notify?: boolean;
  /** `features`: 'binary' asks for notifications as protocols/radio-writes.ts messages. */
  notifications?: string;
}

/** What the radio needs of a peripheral: SimPeripheral (a sensor device), UpdatePeripheral (an updatable one). */
export interface RadioPeripheral {
  readonly uuid: string;
  readonly address: string;
  /** ATT MTU after the exchange. */
  readonly mtu: number;
  readonly rssi: number;
  inRange: boolean;
  readonly subscribed: boolean;
  /** Set by the radio: the peripheral breaks its link (a fault it injects). */
  onCut: (() => void) | undefined;
  advertisement(): { localName: string; serviceUuids: string[]; manufacturerData?: string };
  /** The central subscribed to TX: `notify` puts one ATT payload on the air. */
  subscribe(notify: (chunk: Uint8Array) => void): void;
  unsubscribe(): void;
  /** Bytes the central wrote to RX. */
  onWrite(bytes: Uint8Array): void;
}

interface Slot {
  readonly p: RadioPeripheral;
  central: WebSocket | undefined;
  pending: WebSocket | undefined;
  connected: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class BleRadio {
  readonly slots = new Map<string, Slot>();
  peakConnections = 0;
  /** Connections made at the radio in all. */
  connectsTotal = 0;
  /** RX writes taken: as noble's JSON commands, and as binary messages (`binary` writes in `messages`). */
  readonly writes = { json: 0, binary: 0, messages: 0 };
  /** TX notifications sent: as noble's JSON `read`, and as binary messages. */
  readonly notifications = { json: 0, binary: 0 };
  /** Centrals that asked for notifications in binary (`features`). */
  private readonly binaryNotify = new WeakSet<WebSocket>();
  private readonly scanning = new Map<WebSocket, string[]>();
  private readonly advTimer: NodeJS.Timeout;
  private readonly address: string;

  private constructor(
    private readonly wss: WebSocketServer,
    private readonly opts: BleRadioOptions,
  ) {
    const a = wss.address() as AddressInfo;
    this.address = `ws://${a.address}:${a.port}`;
    wss.on('connection', (ws) => this.onCentral(ws));
    this.advTimer = setInterval(() => this.advertise(), opts.advertiseIntervalMs ?? 100);
    this.advTimer.unref();
  }

  static async start(opts: BleRadioOptions = {}): Promise<BleRadio> {
    const wss = new WebSocketServer({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new BleRadio(wss, opts);
  }

  /** ws://host:port for the gateway's `ble.radio` (fixed at start). */
  get url(): string {
    return this.address;
  }

  get connections(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.connected) n++;
    return n;
  }

  /** Adds a device as a peripheral (advertising from the next interval). */
  add(device: VirtualDevice, opts: SimPeripheralOptions = {}): SimPeripheral {
    return this.attach((index) => new SimPeripheral(device, index, opts));
  }

  /** Adds any peripheral, made with its index (1, 2, …: its address). */
  attach<P extends RadioPeripheral>(make: (index: number) => P): P {
    const p = make(this.slots.size + 1);
    const slot: Slot = { p, central: undefined, pending: undefined, connected: false, timer: undefined };
    p.onCut = () => this.setInRange(p, false);
    this.slots.set(p.uuid, slot);
    return p;
  }

  /** Out of range: the connection drops and advertising stops. Back in range: a pending connect completes. */
  setInRange(p: RadioPeripheral, inRange: boolean): void {
    const slot = this.slots.get(p.uuid);
    if (!slot) return;
    p.inRange = inRange;
    if (!inRange) {
      if (slot.connected) this.drop(slot);
      clearTimeout(slot.timer);
      slot.timer = undefined;
    } else if (slot.pending) {
      this.completeConnect(slot, slot.pending);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.advTimer);
    for (const s of this.slots.values()) {
      clearTimeout(s.timer);
      s.p.unsubscribe();
    }
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onCentral(ws: WebSocket): void {
    // Before anything else: this radio takes a run of writes as one binary message.
    if (this.opts.binaryWrites !== false)
      this.emit(ws, { type: 'features', writes: 'binary', notifications: 'binary' });
    this.emit(ws, { type: 'stateChange', state: 'poweredOn' });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (this.opts.binaryWrites !== false) this.onWrites(ws, data);
        return;
      }
      let cmd: Command;
      try {
        cmd = JSON.parse(data.toString()) as Command;
      } catch {
        return;
      }
      this.onCommand(ws, cmd);
    });
    ws.on('close', () => {
      this.scanning.delete(ws);
      for (const s of this.slots.values()) {
        if (s.pending === ws) s.pending = undefined;
        if (s.central === ws) this.drop(s, false);
      }
    });
  }

  private onCommand(ws: WebSocket, c: Command): void {
    if (c.action === 'features') {
      if (c.notifications === 'binary' && this.opts.binaryWrites !== false) this.binaryNotify.add(ws);
      return;
    }
    if (c.action === 'startScanning') {
      this.scanning.set(ws, c.serviceUuids ?? []);
      return;
    }
    if (c.action === 'stopScanning') {
      this.scanning.delete(ws);
      return;
    }
    const slot = c.peripheralUuid !== undefined ? this.slots.get(c.peripheralUuid) : undefined;
    if (!slot) return;
    const peripheralUuid = slot.p.uuid;
    const mine = slot.connected && slot.central === ws;
    switch (c.action) {
      case 'connect':
        if (slot.connected) return; // already connected (to someone): no answer, as a busy device
        slot.pending = ws;
        if (slot.p.inRange) this.completeConnect(slot, ws);
        return;
      case 'disconnect':
        if (slot.pending === ws) {
          slot.pending = undefined;
          clearTimeout(slot.timer);
          slot.timer = undefined;
        }
        if (mine) this.drop(slot);
        else this.emit(ws, { type: 'disconnect', peripheralUuid });
        return;
      case 'updateRssi':
        this.emit(ws, { type: 'rssiUpdate', peripheralUuid, rssi: slot.p.rssi });
        return;
      case 'discoverServices':
        if (mine) this.emit(ws, { type: 'servicesDiscover', peripheralUuid, serviceUuids: [NUS_SERVICE_UUID] });
        return;
      case 'discoverCharacteristics':
        if (mine && c.serviceUuid === NUS_SERVICE_UUID) {
          const characteristics = [
            { uuid: NUS_RX_UUID, properties: ['write', 'writeWithoutResponse'] },
            { uuid: NUS_TX_UUID, properties: ['notify'] },
          ];
          this.emit(ws, {
            type: 'characteristicsDiscover',
            peripheralUuid,
            serviceUuid: NUS_SERVICE_UUID,
            characteristics,
          });
        }
        return;
      case 'notify':
        if (!mine || c.characteristicUuid !== NUS_TX_UUID) return;
        this.emit(ws, {
          type: 'notify',
          peripheralUuid,
          serviceUuid: NUS_SERVICE_UUID,
          characteristicUuid: NUS_TX_UUID,
          state: c.notify === true,
        });
        if (c.notify === true && !slot.p.subscribed) {
          const tx = { peripheralUuid, serviceUuid: NUS_SERVICE_UUID, characteristicUuid: NUS_TX_UUID };
          slot.p.subscribe((chunk) => {
            if (ws.readyState !== WebSocket.OPEN) return;
            if (this.binaryNotify.has(ws)) {
              this.notifications.binary++;
              ws.send(encodeRadioNotification(tx, chunk));
            } else {
              this.notifications.json++;
              this.emit(ws, { type: 'read', ...tx, data: Buffer.from(chunk).toString('hex'), isNotification: true });
            }
          });
        } else if (c.notify !== true) {
          slot.p.unsubscribe();
        }
        return;
      case 'write':
        if (!mine || c.characteristicUuid !== NUS_RX_UUID || typeof c.data !== 'string') return;
        this.writes.json++;
        slot.p.onWrite(Buffer.from(c.data, 'hex'));
        if (!c.withoutResponse)
          this.emit(ws, {
            type: 'write',
            peripheralUuid,
            serviceUuid: NUS_SERVICE_UUID,
            characteristicUuid: NUS_RX_UUID,
          });
        return;
      default:
        return;
    }
  }

  /** Binary writes (protocols/radio-writes.ts): each payload its own ATT write, as a JSON `write` is. */
  private onWrites(ws: WebSocket, data: Buffer): void {
    const w = decodeRadioWrites(data);
    if (!w) return;
    const slot = this.slots.get(w.peripheralUuid);
    if (!slot?.connected || slot.central !== ws || w.characteristicUuid !== NUS_RX_UUID) return;
    this.writes.messages++;
    for (const p of w.payloads) {
      // A write that cuts the link (or a peripheral that drops it) ends the run there.
      if (!slot.connected || slot.central !== ws) return;
      this.writes.binary++;
      slot.p.onWrite(p);
      if (!w.withoutResponse)
        this.emit(ws, {
          type: 'write',
          peripheralUuid: w.peripheralUuid,
          serviceUuid: NUS_SERVICE_UUID,
          characteristicUuid: NUS_RX_UUID,
        });
    }
  }

  private completeConnect(slot: Slot, ws: WebSocket): void {
    if (slot.timer) return;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (slot.pending !== ws || !slot.p.inRange || slot.connected || ws.readyState !== WebSocket.OPEN) return;
      slot.pending = undefined;
      slot.connected = true;
      slot.central = ws;
      this.connectsTotal++;
      const n = this.connections;
      if (n > this.peakConnections) this.peakConnections = n;
      const peripheralUuid = slot.p.uuid;
      this.emit(ws, { type: 'mtu', peripheralUuid, mtu: slot.p.mtu });
      this.emit(ws, { type: 'connect', peripheralUuid });
    }, this.opts.connectDelayMs ?? 2);
  }

  private drop(slot: Slot, tell = true): void {
    const ws = slot.central;
    slot.connected = false;
    slot.central = undefined;
    slot.p.unsubscribe();
    if (tell && ws) this.emit(ws, { type: 'disconnect', peripheralUuid: slot.p.uuid });
  }

  private advertise(): void {
    if (this.scanning.size === 0) return;
    for (const [ws, uuids] of this.scanning) {
      for (const s of this.slots.values()) {
        if (!s.p.inRange || s.connected) continue;
        const advertisement = s.p.advertisement();
        if (uuids.length > 0 && !advertisement.serviceUuids.some((u) => uuids.includes(u))) continue;
        this.emit(ws, {
          type: 'discover',
          peripheralUuid: s.p.uuid,
          address: s.p.address,
          addressType: 'random',
          connectable: true,
          advertisement,
          rssi: s.p.rssi,
        });
      }
    }
  }

  private emit(ws: WebSocket, msg: Record<string, unknown>): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }
}
