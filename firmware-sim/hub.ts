/**
 * Devices behind concentrators: a fleet whose devices share MQTT connections, `perConnection`
 * to a hub, as a LoRa or BLE hub forwards the signed frames of the devices it hears over its
 * one uplink. Frames are signed end to end, so the gateway takes them on each device's `up`
 * topic from any client it lets publish there (anonymous clients; not with per-device connect
 * tokens, where the connection is the device's own, nor per-device command topics: a hub
 * only carries frames up).
 *
 * Why: with a connection per device (fleet.ts) every frame costs a socket write of its own,
 * about a third of a frame's CPU on loopback (bench/README.md, "firmware-sim"). A hub samples
 * its devices from one timer every `tickMs`, each device at its own phase and rate, and a tick's
 * publishes leave corked, in one socket write (each a whole packet, transports/mqtt-qos1.ts).
 * A frame waits at most `tickMs` for its tick.
 *
 * Delivery is the per-device link's (transports/mqtt.ts): QoS 1, a frame leaves its device's
 * buffer on PUBACK, and on a reconnect each device's unacked frames are published again.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { topics } from '../protocols/index.js';
import type { SignerImpl } from './crypto.js';
import type { DeviceFrame } from './device.js';
import { VirtualDevice } from './device.js';
import { emptyFleetStats, type FleetStats } from './fleet.js';
import { type FleetManifest, generateManifest, manifestSeed } from './manifest.js';
import { type DeviceModelName, Prng } from './sensors.js';
import type { DeviceStateStore } from './state.js';
import { connectQos1, encodeTopic, type Qos1Publisher } from './transports/mqtt-qos1.js';
import { countAttempt } from './transports/uplink-buffer.js';

export interface HubFleetOptions {
  readonly brokerUrl: string;
  readonly manifest?: FleetManifest;
  readonly devices?: number;
  readonly prefix?: string;
  readonly model?: DeviceModelName | readonly DeviceModelName[];
  /** Frames per second per device (default 1). */
  readonly rateHz?: number;
  /** Devices per MQTT connection (default 100). */
  readonly perConnection?: number;
  /** How often a hub samples the devices that are due (default 20 ms). */
  readonly tickMs?: number;
  /** Stop sampling after this many frames per device (tests). */
  readonly maxFrames?: number;
  readonly signer?: SignerImpl;
  readonly bufferCapacity?: number;
  /** Where boot/seq counters live (default in memory). */
  readonly store?: DeviceStateStore;
  /** Seed for the devices' phases (default random). */
  readonly seed?: number;
  readonly reconnectPeriodMs?: number;
  readonly mqttOptions?: IClientOptions;
}

interface Slot {
  readonly device: VirtualDevice;
  /** Its `up` topic, encoded for the PUBLISH packet (transports/mqtt-qos1.ts). */
  readonly up: Buffer;
  /** When its next frame is due (ms, performance.now()). */
  due: number;
  frames: number;
}

const noLog = (): void => {};

/** One connection and the devices it carries. */
class Hub {
  online = false;
  sent = 0;
  resent = 0;
  acked = 0;
  failed = 0;
  errors = 0;
  /** The connection whose connect resent the pending frames (once per connection). */
  private resentOn: unknown;
  private timer: NodeJS.Timeout | undefined;
  private client: MqttClient | undefined;
  private publisher: Qos1Publisher | undefined;

  constructor(
    readonly id: string,
    readonly slots: Slot[],
    private readonly opts: HubFleetOptions,
  ) {}

  start(period: number, tickMs: number): void {
    const { client, publisher } = connectQos1(this.opts.brokerUrl, {
      log: noLog,
      ...this.opts.mqttOptions,
      clientId: this.id,
      clean: true,
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 250,
      connectTimeout: 5000,
      queueQoSZero: false,
      // mqtt.js re-arms its keepalive timer on every PUBACK (a clearTimeout and a new timer per
      // frame); without that it pings every keepalive, which a hub's traffic never needs to skip.
      reschedulePings: false,
    });
    this.client = client;
    this.publisher = publisher;
    client.on('connect', () => {
      this.online = true;
      // A frame goes out once per connection: new ones at their tick, the pending ones here. No
      // set of frames in flight (it grew and shrank its table every tick): a connect per stream.
      if (this.resentOn === client.stream) return;
      this.resentOn = client.stream;
      this.publisher!.corked(() => {
        for (const s of this.slots) for (const f of s.device.pending()) this.publish(s, f);
      });
    });
    client.on('close', () => (this.online = false));
    client.on('error', () => this.errors++);
    this.timer = setInterval(() => this.tick(period), tickMs);
  }

  private tick(period: number): void {
    this.publisher!.corked(() => {
      const now = performance.now();
      const max = this.opts.maxFrames;
      for (const s of this.slots) {
        if (s.due > now || (max !== undefined && s.frames >= max)) continue;
        s.due = Math.max(s.due + period, now - period); // a late hub catches up one frame, not a burst
        const f = s.device.nextFrame();
        s.frames++;
        if (this.online) this.publish(s, f);
      }
    });
  }

  private publish(s: Slot, f: DeviceFrame): void {
    countAttempt(f, this);
    this.publisher!.publish(s.up, f.bytes, (err) => {
      if (err) this.failed++;
      else if (s.device.ack(f.boot, f.seq)) this.acked++;
    });
  }

  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.timer);
    const client = this.client;
    if (!client) return;
    const end = Date.now() + timeoutMs;
    while (this.online && this.publisher!.inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    await new Promise<void>((resolve) => client.end(true, () => resolve()));
    this.client = undefined;
    this.online = false;
  }
}

export class HubFleet {
  readonly rateHz: number;
  readonly devices: readonly VirtualDevice[];
  private readonly hubs: Hub[] = [];
  private running = false;

  constructor(private readonly opts: HubFleetOptions) {
    this.rateHz = opts.rateHz ?? 1;
    if (!(this.rateHz > 0 && this.rateHz <= 1000)) throw new RangeError('rateHz must be in (0, 1000]');
    const per = opts.perConnection ?? 100;
    if (!Number.isInteger(per) || per < 1) throw new RangeError('perConnection must be a positive integer');
    const manifest =
      opts.manifest ?? generateManifest({ devices: opts.devices ?? 1, prefix: opts.prefix, model: opts.model });
    const devices = manifest.devices.map(
      (e) =>
        new VirtualDevice({
          id: e.id,
          seed: manifestSeed(e),
          model: e.model,
          site: e.site,
          signer: opts.signer,
          bufferCapacity: opts.bufferCapacity,
          store: opts.store,
        }),
    );
    this.devices = devices;
    const prefix = opts.prefix ?? manifest.devices[0]?.id ?? 'hub';
    for (let i = 0; i < devices.length; i += per) {
      const slots = devices
        .slice(i, i + per)
        .map((device) => ({ device, up: encodeTopic(topics.up(device.id)), due: 0, frames: 0 }));
      this.hubs.push(new Hub(`${prefix}-hub-${i / per}`, slots, opts));
    }
  }

  /** Connects every hub and starts sampling, each device at a random phase within one period. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const period = 1000 / this.rateHz;
    const rng = new Prng(this.opts.seed ?? Math.floor(Math.random() * 2 ** 32));
    const now = performance.now();
    for (const h of this.hubs) {
      for (const s of h.slots) s.due = now + rng.next() * period;
      h.start(period, this.opts.tickMs ?? 20);
    }
  }

  /** Stops sampling, waits for in-flight publishes up to `timeoutMs`, closes the connections. */
  async stop(timeoutMs = 5000): Promise<FleetStats> {
    this.running = false;
    await Promise.all(this.hubs.map((h) => h.stop(timeoutMs)));
    return this.stats();
  }

  /** Fleet-shaped counters; `connected` counts the devices whose hub is online. */
  stats(): FleetStats {
    const s = emptyFleetStats(this.devices.length); // `resumed` stays 0: hubs connect without TLS
    for (const h of this.hubs) {
      if (h.online) s.connected += h.slots.length;
      s.sent += h.sent;
      s.acked += h.acked;
      s.resent += h.resent;
      s.failed += h.failed;
      s.errors += h.errors;
      for (const { device } of h.slots) {
        s.generated += device.generated;
        s.pending += device.pendingCount;
        s.dropped += device.dropped;
      }
    }
    return s;
  }

  /** Connections (hubs) open now. */
  get connections(): number {
    return this.hubs.filter((h) => h.online).length;
  }

  /** Resolves true when `pred(stats)` holds, false after `timeoutMs`. */
  async waitFor(pred: (s: FleetStats) => boolean, timeoutMs: number, pollMs = 20): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pred(this.stats())) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
