/**
 * A virtual microcontroller: an Ed25519 identity, sensors, boot/seq counters
 * kept in a DeviceStateStore, and a bounded buffer of signed frames that the
 * gateway has not acknowledged yet (a real device keeps these in flash).
 */
import {
  type CommandAckBody,
  MAX_COUNTER,
  publicKeyToDidKey,
  type ReadingBody,
  type SenmlRecord,
  deviceIdToKid,
  encodeBody,
  encodeSign1,
  encodeConnectToken,
  type SignFn,
  isValidId,
  signReading,
} from '../protocols/index.js';
import { AckedRing } from './acked-ring.js';
import { createSigner, publicKeyFromSeed, type SignerImpl } from './crypto.js';
import { type DeviceModelName, SensorSuite } from './sensors.js';
import { type DeviceStateStore, MemoryStateStore } from './state.js';
import { UnackedFrames } from './unacked.js';

const DEFAULT_BUFFER_CAPACITY = 1000;
const RECENT_ACKED = 16;

/** One signed uplink frame and the counters it carries. */
export interface DeviceFrame {
  readonly boot: number;
  readonly seq: number;
  /** Device clock at sampling, ms since the epoch. */
  readonly time: number;
  /** The COSE_Sign1 bytes as sent on the wire. */
  readonly bytes: Uint8Array;
  /** How many times a transport has put this frame on the wire. */
  attempts: number;
}

/** Device clock error: `driftPpm` accumulates from power-on, `offsetMs` is a fixed skew. */
export interface ClockOptions {
  readonly driftPpm?: number;
  readonly offsetMs?: number;
}

export interface VirtualDeviceOptions {
  readonly id: string;
  /** RFC 8032 32-byte secret seed. */
  readonly seed: Uint8Array;
  readonly model: DeviceModelName;
  readonly site?: string;
  /** Where boot/seq survive reboots; default in memory. */
  readonly store?: DeviceStateStore;
  /** Unacked frames kept before the oldest is dropped; default 1000. */
  readonly bufferCapacity?: number;
  readonly clock?: ClockOptions;
  readonly signer?: SignerImpl;
  /** Seed for the sensor PRNG; default the device id (so readings are reproducible). */
  readonly sensorSeed?: number | string;
  /** Wall-clock ms at power-on, the reference point for clock drift; default Date.now(). */
  readonly powerOnMs?: number;
}

/** A record with its value replaced (one value per record, RFC 8428 §4.3: v or vb). */
function forcedRecord(r: SenmlRecord, value: number | boolean): SenmlRecord {
  const { v: _v, vb: _vb, ...rest } = r;
  return typeof value === 'boolean' ? { ...rest, vb: value } : { ...rest, v: value };
}

export class VirtualDevice {
  readonly id: string;
  readonly model: DeviceModelName;
  readonly site: string;
  readonly publicKey: Uint8Array;
  readonly didKey: string;
  readonly bufferCapacity: number;

  private readonly sign: SignFn;
  private readonly kid: Uint8Array;
  private readonly store: DeviceStateStore;
  private readonly sensors: SensorSuite;
  private readonly baseName: string;
  private readonly clock: Required<ClockOptions>;
  private readonly powerOnMs: number;
  private readonly unacked = new UnackedFrames<DeviceFrame>();
  private readonly acked = new AckedRing(RECENT_ACKED);
  private bootCounter: number;
  private seqCounter = 0;
  private droppedCount = 0;
  private generatedCount = 0;
  /** Actuator states reported in every reading (set by firmware-sim/actuators.ts). */
  actuatorRecords: (() => SenmlRecord[]) | undefined;
  /** Sensor readings forced to a value (a scenario: the vibration crosses a threshold). */
  private readonly forced = new Map<string, number | boolean>();

  constructor(opts: VirtualDeviceOptions) {
    if (!isValidId(opts.id)) throw new TypeError(`"${opts.id}" is not a valid device id`);
    this.id = opts.id;
    this.model = opts.model;
    this.site = opts.site ?? 'default';
    this.sign = createSigner(opts.seed, opts.signer);
    this.kid = deviceIdToKid(opts.id);
    this.publicKey = publicKeyFromSeed(opts.seed);
    this.didKey = publicKeyToDidKey(this.publicKey);
    this.bufferCapacity = opts.bufferCapacity ?? DEFAULT_BUFFER_CAPACITY;
    if (!Number.isInteger(this.bufferCapacity) || this.bufferCapacity < 1)
      throw new RangeError('bufferCapacity must be a positive integer');
    this.store = opts.store ?? new MemoryStateStore();
    this.sensors = new SensorSuite(opts.model, opts.sensorSeed ?? opts.id);
    this.baseName = `${opts.id}:`;
    this.clock = { driftPpm: opts.clock?.driftPpm ?? 0, offsetMs: opts.clock?.offsetMs ?? 0 };
    this.powerOnMs = opts.powerOnMs ?? Date.now();
    // Constructing the device is powering it on: that is a boot.
    this.bootCounter = this.nextBoot();
    this.persist();
  }

  get boot(): number {
    return this.bootCounter;
  }
  /** The seq the next frame will carry. */
  get seq(): number {
    return this.seqCounter;
  }
  /** Frames evicted from the full unacked buffer (lost for good). */
  get dropped(): number {
    return this.droppedCount;
  }
  get generated(): number {
    return this.generatedCount;
  }
  get pendingCount(): number {
    return this.unacked.size;
  }

  /** The device's own clock reading at wall-clock `nowMs`. */
  deviceTime(nowMs: number): number {
    const t = nowMs + (nowMs - this.powerOnMs) * (this.clock.driftPpm / 1e6) + this.clock.offsetMs;
    return Math.max(0, Math.round(t));
  }

  private lastTokenTime = -1;

  /**
   * A fresh MQTT CONNECT token for `gatewayId` (protocols/connect-token.ts): signed with the device key
   * over the gateway id and the device clock, each newer than the last (the gateway refuses a replay).
   */
  connectToken(gatewayId: string, nowMs: number = Date.now()): string {
    this.lastTokenTime = Math.max(this.lastTokenTime + 1, this.deviceTime(nowMs));
    return encodeConnectToken({ subject: this.id, audience: gatewayId, time: this.lastTokenTime }, this.sign);
  }

  /** Samples the sensors, signs a reading frame and keeps it until acked. */
  nextFrame(nowMs: number = Date.now()): DeviceFrame {
    // A real device reboots rather than wrap seq, which would reuse (boot, seq).
    if (this.seqCounter > MAX_COUNTER) this.reboot();
    const time = this.deviceTime(nowMs);
    let records = this.sensors.sample(time, this.baseName);
    if (this.forced.size > 0)
      records = records.map((r) =>
        r.n !== undefined && this.forced.has(r.n) ? forcedRecord(r, this.forced.get(r.n)!) : r,
      );
    const extra = this.actuatorRecords?.();
    const body: ReadingBody = {
      type: 'reading',
      boot: this.bootCounter,
      seq: this.seqCounter,
      time,
      records: extra ? [...records, ...extra] : records,
    };
    return this.keep(body);
  }

  /** Forces a sensor's reading (SenML name without the base name, e.g. `vib`) from the next frame on; undefined lets it go. */
  force(name: string, value: number | boolean | undefined): void {
    if (value === undefined) this.forced.delete(name);
    else this.forced.set(name, value);
  }

  /**
   * Signs a command-ack (DESIGN "Downlink command / ack"): an uplink frame with its own
   * (boot, seq), kept until the gateway acks it like any reading, so the answer is not lost.
   */
  commandAck(commandId: Uint8Array, status: number, detail?: string, nowMs: number = Date.now()): DeviceFrame {
    if (this.seqCounter > MAX_COUNTER) this.reboot();
    const body: CommandAckBody = {
      type: 'command-ack',
      boot: this.bootCounter,
      seq: this.seqCounter,
      time: this.deviceTime(nowMs),
      commandId,
      status,
      ...(detail !== undefined && { detail }),
    };
    return this.keep(body);
  }

  private keep(body: ReadingBody | CommandAckBody): DeviceFrame {
    const frame: DeviceFrame = {
      boot: body.boot,
      seq: body.seq,
      time: body.time!,
      // signBody, the kid encoded once; a reading written in place (protocols/reading-encode.ts)
      bytes:
        body.type === 'reading'
          ? signReading(body, this.kid, this.sign)
          : encodeSign1({ kid: this.kid, payload: encodeBody(body) }, this.sign),
      attempts: 0,
    };
    this.seqCounter++;
    this.generatedCount++;
    this.persist();
    if (this.unacked.size >= this.bufferCapacity) {
      this.unacked.shift();
      this.droppedCount++;
    }
    this.unacked.add(frame);
    return frame;
  }

  /** Marks a frame as durable at the gateway; false if it was not pending. */
  ack(boot: number, seq: number): boolean {
    const frame = this.unacked.take(boot, seq);
    if (!frame) return false;
    this.acked.push(frame);
    return true;
  }

  isPending(boot: number, seq: number): boolean {
    return this.unacked.get(boot, seq) !== undefined;
  }

  /** Unacked frames, oldest first. */
  pending(): DeviceFrame[] {
    return this.unacked.values();
  }

  /** The last few acked frames, oldest first (material for replay attacks): copies. */
  recentlyAcked(): readonly DeviceFrame[] {
    return this.acked.frames();
  }

  /** Simulated reset: boot moves on, seq restarts at 0, unacked frames survive (flash). */
  reboot(): void {
    this.bootCounter = this.nextBoot();
    this.seqCounter = 0;
    this.persist();
  }

  private nextBoot(): number {
    const saved = this.store.load(this.id);
    // Also never go below the in-memory counter, in case the store lost a write.
    const last = Math.max(saved?.boot ?? 0, this.bootCounter ?? 0);
    if (last >= MAX_COUNTER) throw new RangeError(`device ${this.id}: boot counter exhausted`);
    return last + 1;
  }

  private persist(): void {
    this.store.save(this.id, { boot: this.bootCounter, seq: this.seqCounter });
  }
}
