/**
 * Where the BLE transport gets its noble central from, and the small part of
 * noble's API it uses (typed here, since noble is CommonJS without strict types).
 *
 * - `hci`: noble's own HCI-socket bindings, the real radio on a Pi. Needs the
 *   kernel's Bluetooth support, an adapter, and cap_net_raw + cap_net_admin.
 * - `websocket`: noble's websocket bindings (lib/websocket/bindings.js, the
 *   protocol noble speaks when NOBLE_WEBSOCKET is set) pointed at a URL of our
 *   choosing instead of its fixed localhost:2846; firmware-sim's simulated
 *   radio serves it. The bindings object is injected with `new Noble(bindings)`,
 *   so noble's own Noble/Peripheral/Service/Characteristic code and the
 *   binding's message handling run either way. A radio that announces binary
 *   writes (firmware-sim's) gets RX writes as protocols/radio-writes.ts messages,
 *   and is asked for its TX notifications the same way.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { NUS_RX_UUID, NUS_SERVICE_UUID } from '../../protocols/index.js';
import { decodeRadioNotification } from '../../protocols/radio-writes.js';
import { RadioWriteBatcher } from './ble-radio-writes.js';

const require = createRequire(import.meta.url);

export interface NobleCharacteristic extends EventEmitter {
  readonly uuid: string;
  readonly properties: string[];
  write(data: Buffer, withoutResponse: boolean, cb?: (err: Error | null) => void): void;
  subscribe(cb?: (err: Error | null) => void): void;
}

export interface NobleService extends EventEmitter {
  readonly uuid: string;
  discoverCharacteristics(uuids: string[], cb?: (err: Error | null, chars: NobleCharacteristic[]) => void): void;
}

export interface NoblePeripheral extends EventEmitter {
  readonly id: string;
  readonly address: string;
  readonly advertisement: { localName?: string; serviceUuids?: string[]; manufacturerData?: Buffer | null };
  rssi: number;
  mtu: number | null;
  state: string;
  connect(cb?: (err?: Error) => void): void;
  disconnect(cb?: () => void): void;
  cancelConnect?(): void;
  discoverServices(uuids: string[], cb?: (err: Error | null, services: NobleService[]) => void): void;
}

export interface NobleCentral extends EventEmitter {
  readonly state: string;
  startScanning(serviceUuids: string[], allowDuplicates: boolean, cb?: (err?: Error) => void): void;
  stopScanning(cb?: () => void): void;
  readonly _bindings: EventEmitter & {
    _ws?: { readyState: number; close(): void; terminate?(): void };
    stop?(): void;
    /** Runs `fn` with its writes to the radio handed over together (createWebSocketNoble). */
    batch?(fn: () => void): void;
    /** Writes `bytes` as ATT payloads of at most `att` bytes in one call; false where unsupported (ble-radio-writes.ts). */
    writeRun?: RadioWriteBatcher['writeRun'];
  };
}

/**
 * Runs `fn`, whose ATT writes go to the radio together where the bindings can (the websocket
 * radio: one socket write for all of them, not one per ATT payload); elsewhere just runs it.
 */
export function batchWrites(noble: NobleCentral | undefined, fn: () => void): void {
  const batch = noble?._bindings.batch;
  if (batch) batch(fn);
  else fn();
}

/**
 * Writes `bytes` to a peripheral's NUS RX as ATT payloads of at most `att` bytes in one call,
 * where the bindings can (the websocket radio with binary writes); false elsewhere: the caller
 * writes each payload through noble.
 */
export function writeRun(
  noble: NobleCentral | undefined,
  peripheralUuid: string,
  bytes: Uint8Array,
  att: number,
): boolean {
  return noble?._bindings.writeRun?.(peripheralUuid, NUS_SERVICE_UUID, NUS_RX_UUID, bytes, att, true) === true;
}

/** Why there is no usable radio, with what to do about it. */
export class BleUnavailableError extends Error {
  constructor(
    readonly code: 'no-bluetooth' | 'no-permission' | 'no-adapter' | 'no-binding',
    message: string,
  ) {
    super(message);
    this.name = 'BleUnavailableError';
  }
}

export const SETCAP_HINT = 'sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f $(which node))';

/** A message for a noble adapter state that is not poweredOn (undefined: wait, it may come up). */
export function explainAdapterState(state: string): BleUnavailableError | undefined {
  switch (state) {
    case 'unauthorized':
      return new BleUnavailableError(
        'no-permission',
        `BLE: no permission to open the Bluetooth adapter; give node the capabilities: ${SETCAP_HINT} (or run as a user with them)`,
      );
    case 'unsupported':
      return new BleUnavailableError(
        'no-adapter',
        'BLE: the Bluetooth adapter does not support Bluetooth Low Energy (HCI 4.0+ needed)',
      );
    case 'poweredOff':
      return new BleUnavailableError(
        'no-adapter',
        'BLE: the Bluetooth adapter is powered off or blocked (try `rfkill unblock bluetooth` and `bluetoothctl power on`); waiting for it',
      );
    default:
      return undefined;
  }
}

type NobleCtor = new (bindings: unknown) => NobleCentral;

/** noble over its HCI-socket bindings (the real adapter). Throws BleUnavailableError when that cannot work here. */
export function createHciNoble(deviceId?: number): NobleCentral {
  let Noble: NobleCtor;
  let Bindings: new (opts: unknown) => unknown;
  try {
    Noble = require('@abandonware/noble/lib/noble') as NobleCtor;
    Bindings = require('@abandonware/noble/lib/hci-socket/bindings') as new (opts: unknown) => unknown;
  } catch (e) {
    throw new BleUnavailableError(
      'no-binding',
      `BLE: noble's HCI binding is not available (${(e as Error).message.split('\n')[0]}); reinstall with build tools (npm rebuild @abandonware/bluetooth-hci-socket)`,
    );
  }
  try {
    return new Noble(new Bindings(deviceId !== undefined ? { deviceId } : {}));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const msg = err.message ?? String(e);
    if (/EPERM|EACCES|Operation not permitted/.test(msg)) {
      throw new BleUnavailableError(
        'no-permission',
        `BLE: not permitted to open an HCI socket; give node the capabilities: ${SETCAP_HINT}`,
      );
    }
    if (/EAFNOSUPPORT|Address family not supported/.test(msg)) {
      throw new BleUnavailableError(
        'no-bluetooth',
        'BLE: this kernel has no Bluetooth support (EAFNOSUPPORT); no adapter can be used here',
      );
    }
    if (/ENODEV|No such device/.test(msg)) {
      throw new BleUnavailableError(
        'no-adapter',
        'BLE: no Bluetooth adapter found (hci0 missing; check `hciconfig` / `bluetoothctl list`)',
      );
    }
    throw new BleUnavailableError('no-adapter', `BLE: the Bluetooth adapter could not be opened: ${msg}`);
  }
}

/**
 * noble over its websocket bindings, connected to `url` (the binding itself
 * only knows ws://localhost:2846). Besides the binding's messages, an extra
 * `{type: 'mtu', peripheralUuid, mtu}` is understood and passed to noble's
 * own `onMtu` (the HCI binding reports the negotiated MTU the same way).
 */
export function createWebSocketNoble(url: string): NobleCentral {
  const Noble = require('@abandonware/noble/lib/noble') as NobleCtor;
  const Bindings = require('@abandonware/noble/lib/websocket/bindings') as { prototype: object };
  const WebSocket = require('ws') as new (
    url: string,
  ) => EventEmitter & { send(d: string | Buffer, cb?: (e?: Error) => void): void; close(): void; terminate(): void };
  type B = EventEmitter & {
    _ws: InstanceType<typeof WebSocket>;
    _startScanCommand: unknown;
    _peripherals: Record<string, unknown>;
    _onMessage(m: unknown): void;
  };
  const b = Object.create(Bindings.prototype) as B;
  EventEmitter.call(b);
  b._startScanCommand = null;
  b._peripherals = {};
  const ws = new WebSocket(url);
  b._ws = ws;
  // A radio that takes binary writes (firmware-sim's says so first thing) gets a run of ATT
  // writes to one characteristic in one message (ble-radio-writes.ts); any other (noble's own
  // ws-slave.js, say) gets noble's JSON command per write.
  const writes = new RadioWriteBatcher((m) => ws.send(m));
  // Every other command leaves after the writes before it.
  const sendCommand = (b as B & { _sendCommand(c: unknown, e?: unknown): void })._sendCommand;
  (b as B & { _sendCommand: unknown })._sendCommand = function (this: B, c: unknown, e?: unknown) {
    writes.flush();
    sendCommand.call(this, c, e);
  };
  // A report's window of chunks leaves in one socket write: corked, and with binary writes one
  // message (bench/README.md).
  (b as B & { batch(fn: () => void): void }).batch = (fn) => {
    const socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } | null })._socket;
    if (!socket) return fn();
    socket.cork();
    try {
      writes.batch(fn);
    } finally {
      socket.uncork();
    }
  };
  (b as B & { writeRun: unknown }).writeRun = writes.writeRun.bind(writes);
  // noble's write (websocket/bindings.js) builds the same JSON with JSON.stringify and a callback
  // closure per ATT payload; here the fixed part is made once per characteristic. Send errors
  // surface as the socket's 'error' / 'close' (down, below), as a failed command would.
  const writePrefix = new Map<string, string>();
  (b as B & { write: unknown }).write = (
    peripheralUuid: string,
    serviceUuid: string,
    characteristicUuid: string,
    data: Buffer,
    withoutResponse: boolean,
  ): void => {
    const wr = withoutResponse === true;
    if (writes.writeRun(peripheralUuid, serviceUuid, characteristicUuid, data, data.length, wr)) return;
    writes.flush();
    const key = `${peripheralUuid}/${serviceUuid}/${characteristicUuid}`;
    let prefix = writePrefix.get(key);
    if (prefix === undefined) {
      prefix = `${JSON.stringify({ action: 'write', peripheralUuid, serviceUuid, characteristicUuid }).slice(0, -1)},"data":"`;
      if (writePrefix.size < 4096) writePrefix.set(key, prefix);
    }
    ws.send(`${prefix}${data.toString('hex')}","withoutResponse":${wr}}`);
  };
  const onMessage = b._onMessage.bind(b);
  b.on('message', (m: { type?: string; peripheralUuid?: string; mtu?: number; state?: string }) => {
    // The binding console.logs state changes and socket events; these two are handled here instead.
    if (m.type === 'stateChange') b.emit('stateChange', m.state);
    else if (m.type === 'features') {
      const f = m as { writes?: unknown; notifications?: unknown };
      writes.enabled = f.writes === 'binary';
      // Notifications in binary too (protocols/radio-writes.ts), asked for only of a radio that offers them.
      if (f.notifications === 'binary') ws.send(JSON.stringify({ action: 'features', notifications: 'binary' }));
    } else if (m.type === 'mtu') b.emit('onMtu', m.peripheralUuid, m.mtu);
    else onMessage(m);
  });
  const down = (): void => void b.emit('stateChange', 'poweredOff');
  ws.on('close', down);
  ws.on('error', down);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      // A notification in binary: what noble's binding emits for a JSON `read` with isNotification.
      const n = decodeRadioNotification(data);
      if (n) b.emit('read', n.peripheralUuid, n.serviceUuid, n.characteristicUuid, n.payload, true);
      return;
    }
    try {
      b.emit('message', JSON.parse(data.toString()));
    } catch {
      // a malformed message from the radio is ignored
    }
  });
  return new Noble(b);
}

/**
 * noble's HCI binding installs a SIGINT handler on init that calls
 * process.exit(1) when it is the last one, which would skip the gateway's
 * orderly stop; the gateway handles signals itself. Call after init (noble
 * inits on the next tick after a 'stateChange' listener is added).
 */
export function detachNobleSigint(noble: NobleCentral): void {
  const h = (noble._bindings as { onSigIntBinded?: () => void }).onSigIntBinded;
  if (h) process.removeListener('SIGINT', h);
}

/** Closes what a noble central holds open (the websocket; HCI sockets stop with the bindings). */
export function closeNoble(noble: NobleCentral): void {
  const b = noble._bindings;
  // Over a websocket that is already closed (the radio went away) there is nothing to stop.
  if (!b._ws || b._ws.readyState === 1) {
    try {
      noble.stopScanning();
    } catch {
      // not scanning
    }
  }
  b._ws?.terminate?.() ?? b._ws?.close();
  b.stop?.();
}
