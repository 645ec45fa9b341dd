/**
 * BLE transport: a noble central that scans for the Nordic UART Service,
 * keeps one BleLink (ble-link.ts) per enrolled device it hears, and connects
 * to them within two caps: `maxConnecting` attempts at once (an HCI
 * controller creates one LE connection at a time) and `maxConnections` slots
 * in all (connecting + subscribed). A device that fails or is lost waits
 * `backoffMinMs · 2^(failures−1)` up to `backoffMaxMs`, minus up to `jitter`
 * of it at random, and must be heard advertising again before it is retried,
 * so a site full of flapping devices does not become a reconnect storm.
 *
 * With more devices than slots, slots are shared: when every slot is taken
 * and devices wait, the one connected longest (at least `shareSlotsAfterMs`)
 * is let go.
 *
 * Slots are counted from the links' states, which every path (connected,
 * refused, timed out, disconnected, closed) moves out of `connecting` and
 * `subscribed`; nothing is counted separately that could drift.
 *
 * When the radio cannot be used (no Bluetooth in the kernel, no adapter, no
 * capabilities) the transport logs one clear error and stays idle; the other
 * transports keep running.
 */
import { advertisedDeviceIds, NUS_SERVICE_UUID, type SignFn } from '../../protocols/index.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { Logger } from '../logger.js';
import { AdvertiserMemory, BLE_FORGET_AFTER_MS, BLE_MAX_ADVERTISERS } from './ble-forget.js';
import { BleLink, type BleDeviceState, type BleLinkStats } from './ble-link.js';
import {
  BleUnavailableError,
  SETCAP_HINT,
  closeNoble,
  createHciNoble,
  detachNobleSigint,
  batchWrites,
  writeRun,
  createWebSocketNoble,
  explainAdapterState,
  type NobleCentral,
  type NoblePeripheral,
} from './ble-noble.js';

export interface BleSettings {
  readonly maxConnections: number;
  readonly maxConnecting: number;
  readonly connectTimeoutMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** 0..1: the share of each backoff taken off at random. */
  readonly jitter: number;
  /**
   * With every slot taken and devices waiting, the device connected longest
   * (at least this long) is disconnected to let one in; its unacked frames
   * wait on the device. 0: never (devices past the cap wait for a loss).
   */
  readonly shareSlotsAfterMs: number;
  /** Only these device ids (default: every enrolled device). */
  readonly devices?: readonly string[] | undefined;
  /** 'hci' (the adapter) or a ws:// URL of a noble websocket radio (firmware-sim's simulated radio). */
  readonly radio: string;
  readonly hciDevice?: number | undefined;
  /** Advertisers remembered (here and in noble) beyond enrolled devices' links (ble-forget.ts). */
  readonly maxAdvertisers?: number | undefined;
  /** An advertiser not heard for this long is forgotten. */
  readonly forgetAdvertisersAfterMs?: number | undefined;
}

export interface BleTransportOptions extends BleSettings {
  readonly gatewayId: string;
  readonly sign: SignFn;
  readonly maxFrameBytes?: number;
  readonly maxInflight?: number;
  /** Whether a device id is enrolled and not revoked. */
  readonly isEnrolled: (id: string) => boolean;
  /** A ready noble central (tests); default from `radio`. */
  readonly noble?: NobleCentral;
  readonly random?: () => number;
}

export interface BleEvents {
  onDeviceSeen?(device: string, source: string): void;
  onLinkDown?(source: string): void;
}

export interface BleDeviceStatus {
  readonly id: string;
  readonly state: BleDeviceState;
  readonly since: string;
  readonly address: string;
  readonly rssi: number;
  readonly mtu: number;
  readonly failures: number;
  readonly lastError?: string | undefined;
  readonly stats: BleLinkStats;
}

export interface BleStatus {
  readonly radio: string;
  readonly adapter: string;
  readonly error?: string | undefined;
  readonly scanning: boolean;
  readonly connections: number;
  readonly connecting: number;
  readonly peakConnections: number;
  readonly maxConnections: number;
  /** Advertisements naming no enrolled device (or none at all). */
  readonly ignoredAdvertisements: number;
  /** Advertisers remembered now, and forgotten in all (ble-forget.ts). */
  readonly advertisers: number;
  readonly forgottenAdvertisers: number;
  readonly devices: BleDeviceStatus[];
}

const PUMP_EVERY_MS = 200;
const SWEEP_EVERY_MS = 5000;

export class BleTransport {
  readonly links = new Map<string, BleLink>();
  adapter = 'unknown';
  error: string | undefined;
  scanning = false;
  peakConnections = 0;
  ignoredAdvertisements = 0;
  private noble: NobleCentral | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private reported = new Set<string>();
  /** Every advertiser noble reports, so that the idle ones can be forgotten. */
  advertisers: AdvertiserMemory | undefined;
  private lastSweep = 0;
  /** Firmware reports from any link (set by the firmware transfer, gateway/firmware/links.ts). */
  onFirmware: ((frame: Uint8Array, link: BleLink) => void) | undefined;

  private constructor(
    private readonly opts: BleTransportOptions,
    private readonly ingest: IngestPipeline,
    private readonly log: Logger,
    private readonly events: BleEvents,
  ) {}

  /** Starts scanning; never throws for a missing radio (see `status().error`). */
  static start(opts: BleTransportOptions, ingest: IngestPipeline, log: Logger, events: BleEvents = {}): BleTransport {
    const t = new BleTransport(opts, ingest, log, events);
    try {
      t.noble =
        opts.noble ?? (opts.radio === 'hci' ? createHciNoble(opts.hciDevice) : createWebSocketNoble(opts.radio));
    } catch (e) {
      t.unavailable(
        e instanceof BleUnavailableError ? e : new BleUnavailableError('no-adapter', `BLE: ${(e as Error).message}`),
      );
      return t;
    }
    const noble = t.noble;
    t.advertisers = new AdvertiserMemory(
      noble,
      opts.maxAdvertisers ?? BLE_MAX_ADVERTISERS,
      opts.forgetAdvertisersAfterMs ?? BLE_FORGET_AFTER_MS,
    );
    // The HCI binding reports a failed init (no permission, no adapter) as a warning.
    noble.on('warning', (m: string) => {
      if (/EPERM|EACCES|not permitted/i.test(m))
        t.unavailable(
          new BleUnavailableError(
            'no-permission',
            `BLE: no permission to open the Bluetooth adapter (${m}); give node the capabilities: ${SETCAP_HINT}`,
          ),
        );
      else if (/ENODEV|No such device/i.test(m))
        t.unavailable(
          new BleUnavailableError('no-adapter', `BLE: no Bluetooth adapter found (${m}); check \`bluetoothctl list\``),
        );
      else log.debug({ warning: m }, 'noble warning');
    });
    noble.on('stateChange', (s: string) => t.onAdapterState(s));
    setImmediate(() => detachNobleSigint(noble));
    noble.on('discover', (p: NoblePeripheral) => t.onDiscover(p));
    noble.on('scanStop', () => (t.scanning = false));
    t.timer = setInterval(() => t.pump(), PUMP_EVERY_MS);
    t.timer.unref();
    log.info(
      {
        radio: opts.radio === 'hci' ? `hci${opts.hciDevice ?? 0}` : opts.radio,
        maxConnections: opts.maxConnections,
        maxConnecting: opts.maxConnecting,
      },
      'BLE transport: scanning for the Nordic UART Service once the adapter is up',
    );
    return t;
  }

  /** Runs `fn`, whose writes (to any link) go to the radio together where it can (ble-noble.ts batchWrites). */
  batch(fn: () => void): void {
    batchWrites(this.noble, fn);
  }

  get connections(): number {
    let n = 0;
    for (const l of this.links.values()) if (l.holdsSlot) n++;
    return n;
  }
  get connecting(): number {
    let n = 0;
    for (const l of this.links.values()) if (l.state === 'connecting') n++;
    return n;
  }

  /** Sends a downlink frame to a subscribed device; false if it is not connected. */
  send(deviceId: string, frame: Uint8Array): Promise<boolean> {
    const link = this.links.get(deviceId);
    return Promise.resolve(link ? link.send(frame) : false);
  }

  status(): BleStatus {
    return {
      radio: this.opts.radio,
      adapter: this.adapter,
      ...(this.error !== undefined && { error: this.error }),
      scanning: this.scanning,
      connections: this.connections,
      connecting: this.connecting,
      peakConnections: this.peakConnections,
      maxConnections: this.opts.maxConnections,
      ignoredAdvertisements: this.ignoredAdvertisements,
      advertisers: this.advertisers?.size ?? 0,
      forgottenAdvertisers: this.advertisers?.forgotten ?? 0,
      devices: [...this.links.values()].map((l) => ({
        id: l.deviceId,
        state: l.state,
        since: new Date(l.since).toISOString(),
        address: l.peripheral.address,
        rssi: l.rssi,
        mtu: l.mtu,
        failures: l.failures,
        lastError: l.lastError,
        stats: { ...l.stats },
      })),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const l of this.links.values()) {
      const p = l.peripheral;
      const held = l.holdsSlot;
      l.close();
      if (held) {
        try {
          p.disconnect();
        } catch {
          // radio already gone
        }
      }
    }
    if (this.noble) closeNoble(this.noble);
  }

  private unavailable(e: BleUnavailableError): void {
    if (this.error === e.message) return;
    this.adapter = e.code;
    this.error = e.message;
    this.log.error({ code: e.code }, `${e.message}; BLE is off, the other transports keep running`);
  }

  private onAdapterState(s: string): void {
    this.adapter = s;
    if (this.closed) return;
    if (s === 'poweredOn') {
      this.error = undefined;
      this.reported.clear();
      this.log.info('BLE adapter powered on; scanning');
      this.noble!.startScanning([NUS_SERVICE_UUID], true, (err?: Error) => {
        if (err) this.log.warn({ err: err.message }, 'BLE scan did not start');
      });
      this.scanning = true;
      return;
    }
    this.scanning = false;
    for (const l of this.links.values()) l.close();
    const e =
      this.opts.radio !== 'hci' && s === 'poweredOff'
        ? new BleUnavailableError('no-adapter', `BLE: the radio at ${this.opts.radio} closed or cannot be reached`)
        : explainAdapterState(s);
    if (e && !this.reported.has(s)) {
      this.reported.add(s);
      this.error = e.message;
      this.log.error({ code: e.code, state: s }, `${e.message}; the other transports keep running`);
    }
  }

  private onDiscover(p: NoblePeripheral): void {
    if (this.closed) return;
    const mem = this.advertisers;
    if (mem?.heardNow(p.id, Date.now(), this.links.size)) mem.sweep(Date.now(), this.linkPeripherals());
    const adv = p.advertisement;
    if (adv.serviceUuids && adv.serviceUuids.length > 0 && !adv.serviceUuids.includes(NUS_SERVICE_UUID)) {
      this.ignoredAdvertisements++;
      return;
    }
    const id = advertisedDeviceIds(adv).find((d) => this.wanted(d));
    if (id === undefined) {
      this.ignoredAdvertisements++;
      return;
    }
    let link = this.links.get(id);
    if (!link) {
      link = new BleLink(id, p, {
        ingest: this.ingest,
        gatewayId: this.opts.gatewayId,
        sign: this.opts.sign,
        log: this.log,
        maxFrameBytes: this.opts.maxFrameBytes ?? 4096,
        maxInflight: this.opts.maxInflight ?? 1024,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        canCancelConnect:
          typeof (this.noble?._bindings as { cancelConnect?: unknown } | undefined)?.cancelConnect === 'function',
        batch: (fn) => this.batch(fn),
        writeRun: (peripheralUuid, bytes, att) => writeRun(this.noble, peripheralUuid, bytes, att),
        onState: (l, from) => this.onLinkState(l, from),
        onFirmware: (frame, l) => this.onFirmware?.(frame, l),
        ...(this.events.onDeviceSeen && { onDeviceSeen: this.events.onDeviceSeen }),
        ...(this.events.onLinkDown && { onLinkDown: this.events.onLinkDown }),
      });
      this.links.set(id, link);
      this.log.info({ device: id, address: p.address, rssi: p.rssi }, `BLE ${id}: discovered`);
    } else if (!link.holdsSlot) {
      link.peripheral = p; // a device with a new (random) address is the same device
    }
    link.lastSeen = Date.now();
    link.rssi = p.rssi;
    if (!link.holdsSlot) this.pump();
  }

  /** Peripherals of enrolled devices' links: never forgotten. */
  private linkPeripherals(): Set<string> {
    const s = new Set<string>();
    for (const l of this.links.values()) s.add(l.peripheral.id);
    return s;
  }

  private wanted(id: string): boolean {
    const only = this.opts.devices;
    if (only && only.length > 0 && !only.includes(id)) return false;
    return this.opts.isEnrolled(id);
  }

  private onLinkState(link: BleLink, from: BleDeviceState): void {
    if (link.state === 'lost') {
      const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** Math.max(0, link.failures - 1));
      const rnd = this.opts.random ?? Math.random;
      link.notBefore = Date.now() + Math.round(base * (1 - this.opts.jitter * rnd()));
      if (from !== 'lost') setImmediate(() => this.pump());
    }
    const c = this.connections;
    if (c > this.peakConnections) this.peakConnections = c;
  }

  /** Lets go of the device subscribed longest, if it has had its share. */
  private shareSlot(now: number): void {
    const after = this.opts.shareSlotsAfterMs;
    if (after <= 0) return;
    let oldest: BleLink | undefined;
    for (const l of this.links.values())
      if (l.state === 'subscribed' && (!oldest || l.since < oldest.since)) oldest = l;
    if (!oldest || now - oldest.since < after) return;
    const p = oldest.peripheral;
    oldest.close('slot shared with a waiting device');
    try {
      p.disconnect();
    } catch {
      // radio already gone
    }
  }

  /** Starts attempts while both caps allow: longest-waiting eligible devices first. */
  private pump(): void {
    if (this.closed || this.adapter !== 'poweredOn') return;
    const now = Date.now();
    if (now - this.lastSweep >= Math.min(SWEEP_EVERY_MS, this.opts.forgetAdvertisersAfterMs ?? SWEEP_EVERY_MS)) {
      this.lastSweep = now;
      this.advertisers?.sweep(now, this.linkPeripherals());
    }
    let connections = this.connections;
    let connecting = this.connecting;
    if (connecting >= this.opts.maxConnecting) return;
    const fresh = Math.max(5000, this.opts.connectTimeoutMs);
    const ready = [...this.links.values()]
      .filter((l) => !l.holdsSlot && now >= l.notBefore && l.lastSeen >= l.since && now - l.lastSeen < fresh)
      .sort((a, b) => a.since - b.since);
    if (connections >= this.opts.maxConnections) {
      if (ready.length > 0 && connecting === 0) this.shareSlot(now);
      return;
    }
    for (const l of ready) {
      if (connecting >= this.opts.maxConnecting || connections >= this.opts.maxConnections) break;
      connecting++;
      connections++;
      this.log.debug({ device: l.deviceId, address: l.peripheral.address }, `BLE ${l.deviceId}: connecting`);
      l.connect();
    }
  }
}
