/**
 * A fleet of virtual devices in one process, each with its own MQTT client,
 * sampling at a fixed rate. Start times are jittered across one period so a
 * thousand devices do not publish in lockstep (real devices boot at random);
 * one timer fires them all, each in its phase's slot (phase-ticker.ts).
 */
import type { IClientOptions } from 'mqtt';
import type { SignerImpl } from './crypto.js';
import { type ClockOptions, type DeviceFrame, VirtualDevice } from './device.js';
import { type FleetManifest, generateManifest, manifestSeed } from './manifest.js';
import { type DeviceModelName, Prng } from './sensors.js';
import { PhaseTicker } from './phase-ticker.js';
import type { DeviceStateStore } from './state.js';
import { MqttDeviceLink } from './transports/mqtt.js';

export interface FleetStats {
  devices: number;
  connected: number;
  /** Frames the devices produced. */
  generated: number;
  sent: number;
  acked: number;
  pending: number;
  dropped: number;
  resent: number;
  failed: number;
  errors: number;
  /** Connects over TLS that resumed the device's previous session. */
  resumed: number;
}

/** Counters at zero, for a fleet of `devices` (a Fleet's and a HubFleet's `stats()` add into it). */
export function emptyFleetStats(devices: number): FleetStats {
  return {
    devices,
    connected: 0,
    generated: 0,
    sent: 0,
    acked: 0,
    pending: 0,
    dropped: 0,
    resent: 0,
    failed: 0,
    errors: 0,
    resumed: 0,
  };
}

export interface TickContext {
  readonly device: VirtualDevice;
  readonly link: MqttDeviceLink;
  /** This device's tick number in this run, from 0. */
  readonly tick: number;
  readonly nowMs: number;
}

/** Fault hooks run on every tick; they may also call device.reboot(), link.dropConnection(), link.publishRaw(). */
export interface FleetFaultHooks {
  /** Return 'skip' to produce no frame this tick (sensor or MCU stall). */
  // biome-ignore lint/suspicious/noConfusingVoidType: void, so a hook that only injects a fault needs no return
  beforeFrame?(ctx: TickContext): void | 'skip';
  /** Return 'hold' to keep the new frame pending without publishing it now (it goes out on the next reconnect). */
  // biome-ignore lint/suspicious/noConfusingVoidType: void, so a hook that only injects a fault needs no return
  afterFrame?(ctx: TickContext & { readonly frame: DeviceFrame }): void | 'hold';
}

export interface FleetOptions {
  readonly brokerUrl: string;
  /** Identities to run; without it, `devices` fresh identities are generated. */
  readonly manifest?: FleetManifest;
  readonly devices?: number;
  readonly prefix?: string;
  readonly site?: string;
  readonly model?: DeviceModelName | readonly DeviceModelName[];
  /** Frames per second per device (default 1). */
  readonly rateHz?: number;
  /** Stop sampling after this many frames per device (tests). */
  readonly maxFrames?: number;
  readonly store?: DeviceStateStore;
  readonly bufferCapacity?: number;
  readonly signer?: SignerImpl;
  readonly clock?: ClockOptions | ((id: string) => ClockOptions);
  readonly reconnectPeriodMs?: number;
  /** How long a device waits for its CONNACK before dialling again (default the link's, 5 s). */
  readonly connectTimeoutMs?: number;
  /** Spread first samples over one period (default true). */
  readonly startJitter?: boolean;
  /** Seed for start jitter (default random). */
  readonly seed?: number;
  readonly faults?: FleetFaultHooks;
  readonly onCommand?: (deviceId: string, payload: Uint8Array) => void;
  /** Extra mqtt.js options for every client (TLS: `ca`). */
  readonly mqttOptions?: IClientOptions;
  /** Authenticate every device at CONNECT to this gateway (a connect token per connect). */
  readonly gatewayId?: string;
  readonly now?: () => number;
}

interface Member {
  readonly device: VirtualDevice;
  readonly link: MqttDeviceLink;
  ticks: number;
  /** Frames produced in this run (maxFrames counts these, not skipped ticks). */
  frames: number;
}

/** A device fires at most this long after its phase (phase-ticker.ts). */
const SLOT_MS = 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Fleet {
  readonly rateHz: number;
  readonly devices: readonly VirtualDevice[];
  /** The last errors thrown during a tick, e.g. by a fault hook (all counted in stats.errors, never fatal). */
  readonly tickErrors: Error[] = [];
  private tickErrorCount = 0;

  private readonly members = new Map<string, Member>();
  private readonly now: () => number;
  private running = false;
  private ticker: PhaseTicker<Member> | undefined;

  constructor(private readonly opts: FleetOptions) {
    this.rateHz = opts.rateHz ?? 1;
    if (!(this.rateHz > 0 && this.rateHz <= 1000)) throw new RangeError('rateHz must be in (0, 1000]');
    if (opts.maxFrames !== undefined && !(Number.isInteger(opts.maxFrames) && opts.maxFrames >= 0)) {
      throw new RangeError('maxFrames must be a non-negative integer');
    }
    this.now = opts.now ?? Date.now;
    const manifest =
      opts.manifest ??
      generateManifest({ devices: opts.devices ?? 1, prefix: opts.prefix, site: opts.site, model: opts.model });
    for (const entry of manifest.devices) {
      const clock = typeof opts.clock === 'function' ? opts.clock(entry.id) : opts.clock;
      const device = new VirtualDevice({
        id: entry.id,
        seed: manifestSeed(entry),
        model: entry.model,
        site: entry.site,
        store: opts.store,
        bufferCapacity: opts.bufferCapacity,
        signer: opts.signer,
        clock,
        powerOnMs: this.now(),
      });
      const link = new MqttDeviceLink(device, {
        brokerUrl: opts.brokerUrl,
        reconnectPeriodMs: opts.reconnectPeriodMs,
        connectTimeoutMs: opts.connectTimeoutMs,
        clientOptions: opts.mqttOptions,
        ...(opts.gatewayId !== undefined && { gatewayId: opts.gatewayId }),
        onCommand: opts.onCommand && ((payload) => opts.onCommand!(device.id, payload)),
      });
      this.members.set(entry.id, { device, link, ticks: 0, frames: 0 });
    }
    this.devices = [...this.members.values()].map((m) => m.device);
  }

  device(id: string): VirtualDevice | undefined {
    return this.members.get(id)?.device;
  }
  link(id: string): MqttDeviceLink | undefined {
    return this.members.get(id)?.link;
  }

  /** Connects every device and starts sampling. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const period = 1000 / this.rateHz;
    const rng = new Prng(this.opts.seed ?? Math.floor(Math.random() * 2 ** 32));
    const ticker = new PhaseTicker<Member>(period, SLOT_MS, (m) => this.tick(m));
    this.ticker = ticker;
    for (const m of this.members.values()) {
      m.link.start();
      const phase = this.opts.startJitter === false ? 0 : rng.next() * period;
      if (!this.done(m)) ticker.add(m, phase);
    }
    ticker.start();
  }

  /** Stops sampling, waits for in-flight publishes up to `timeoutMs`, closes all clients. */
  async stop(timeoutMs = 5000): Promise<FleetStats> {
    this.running = false;
    this.ticker?.stop();
    await Promise.all([...this.members.values()].map((m) => m.link.stop(timeoutMs)));
    return this.stats();
  }

  stats(): FleetStats {
    const s = emptyFleetStats(this.members.size);
    s.errors = this.tickErrorCount;
    for (const { device, link } of this.members.values()) {
      if (link.connected) s.connected++;
      s.generated += device.generated;
      s.pending += device.pendingCount;
      s.dropped += device.dropped;
      s.sent += link.stats.sent;
      s.acked += link.stats.acked;
      s.resent += link.stats.resent;
      s.failed += link.stats.failed;
      s.errors += link.stats.errors;
      s.resumed += link.stats.resumed;
    }
    return s;
  }

  /** The most recent client error of any device (e.g. ECONNREFUSED), for status output. */
  lastError(): Error | undefined {
    for (const m of this.members.values()) if (m.link.lastError) return m.link.lastError;
    return undefined;
  }

  /** Simulated reset of one device: counters move on, the connection drops and comes back. */
  reboot(id: string): void {
    const m = this.member(id);
    m.device.reboot();
    m.link.dropConnection();
  }

  /** Publishes raw bytes as `id` (fault injection); resolves on PUBACK. */
  inject(id: string, bytes: Uint8Array, topic?: string): Promise<void> {
    return this.member(id).link.publishRaw(bytes, topic);
  }

  /** Resolves true when `pred(stats)` holds, false after `timeoutMs`. */
  async waitFor(pred: (s: FleetStats) => boolean, timeoutMs: number, pollMs = 20): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pred(this.stats())) return true;
      if (Date.now() >= deadline) return false;
      await sleep(pollMs);
    }
  }

  waitConnected(timeoutMs: number): Promise<boolean> {
    return this.waitFor((s) => s.connected === s.devices, timeoutMs);
  }

  /** With maxFrames: every device has produced them all and nothing is pending. */
  settled(timeoutMs: number): Promise<boolean> {
    const max = this.opts.maxFrames;
    if (max === undefined) throw new Error('settled() needs the maxFrames option');
    return this.waitFor(
      () => [...this.members.values()].every((m) => m.frames >= max && m.device.pendingCount === 0),
      timeoutMs,
    );
  }

  private member(id: string): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no device "${id}" in this fleet`);
    return m;
  }

  private done(m: Member): boolean {
    return this.opts.maxFrames !== undefined && m.frames >= this.opts.maxFrames;
  }

  private halt(m: Member): void {
    this.ticker?.remove(m);
  }

  private tick(m: Member): void {
    if (this.done(m)) return this.halt(m);
    const faults = this.opts.faults;
    const tick = m.ticks++;
    const nowMs = this.now();
    try {
      if (faults === undefined) {
        // No hooks: no context object a frame.
        const frame = m.device.nextFrame(nowMs);
        m.frames++;
        m.link.send(frame);
        return;
      }
      const ctx: TickContext = { device: m.device, link: m.link, tick, nowMs };
      if (faults.beforeFrame?.(ctx) === 'skip') return;
      const frame = m.device.nextFrame(nowMs);
      m.frames++;
      if (faults.afterFrame?.({ ...ctx, frame }) === 'hold') return;
      m.link.send(frame);
    } catch (e) {
      this.tickErrorCount++;
      this.tickErrors.push(e instanceof Error ? e : new Error(String(e)));
      if (this.tickErrors.length > 100) this.tickErrors.shift();
    } finally {
      if (this.done(m)) this.halt(m);
    }
  }
}
