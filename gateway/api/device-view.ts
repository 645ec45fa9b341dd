/**
 * What the operator surface shows per device: last frame, latest reading of
 * each SenML name with a short history (sparklines), battery and signal when a
 * record provides them, and rejected frames by reason with the last one's
 * detail. For every device of the site: those enrolled here and those only siblings heard
 * (known through their enrolment blocks), each with the gateway that heard its last frame.
 * Fed by the merged history (the log's new frames, heard here or synced) and the ingest
 * outcomes; each device seeded from the frames index when first asked about (not at start).
 */
import type { Subscription } from 'rxjs';
import { resolvePack, type ResolvedRecord, type UplinkBody } from '../../protocols/index.js';
import type { ApiSource } from './source.js';
import type { FrameRow } from '../log/frames-index.js';
import { decodeFrameBody } from './decode.js';

/** Values kept per reading for sparklines. */
const HISTORY = 60;
/** Devices not enrolled (unknown kids, forged topics) whose rejections are remembered. */
const MAX_UNKNOWN = 256;
/**
 * SenML names kept per device: a device whose names change with every frame (a counter or a
 * time in the name) would otherwise grow its map without end. The least recently updated goes.
 */
export const MAX_READINGS_PER_DEVICE = 64;

export interface Reading {
  /** SenML name without the device's base-name prefix ("temp" for "press-01:temp"). */
  readonly name: string;
  readonly unit?: string;
  /** Number, boolean or string (whichever value field the record carries). */
  readonly value: number | boolean | string | null;
  /** Receive time of the frame, ms. */
  readonly at: number;
  /** Recent numeric values, oldest first. */
  readonly history: number[];
}

export interface LastFrame {
  readonly rxTime: number;
  /** The gateway that heard it (its id, or did:key). */
  readonly heardBy: string;
  readonly transport: string;
  readonly boot: number;
  readonly seq: number;
}

export interface Rejections {
  total: number;
  byReason: Record<string, number>;
  last?: { reason: string; detail: string; at: number; transport: string };
}

interface DeviceState {
  lastFrame?: LastFrame;
  readings: Map<string, Reading>;
  rejections: Rejections;
}

const BATTERY = /^(bat|batt|battery|vbat)$/i;
const SIGNAL = /^(rssi|signal|snr|lqi)$/i;

/** The short name of a resolved record: its name without a "<device>:" (or "urn:dev:…:") prefix. */
export function shortName(device: string, fullName: string): string {
  const i = fullName.lastIndexOf(':');
  if (fullName.startsWith(`${device}:`)) return fullName.slice(device.length + 1);
  return i >= 0 ? fullName.slice(i + 1) : fullName;
}

function recordValue(r: ResolvedRecord): number | boolean | string | null {
  return r.value ?? r.boolValue ?? r.stringValue ?? r.sum ?? null;
}

/** Removes the reading updated longest ago (the map keeps first-seen order for display). */
function dropStalest(readings: Map<string, Reading>): void {
  let stalest: Reading | undefined;
  for (const r of readings.values()) if (!stalest || r.at < stalest.at) stalest = r;
  if (stalest) readings.delete(stalest.name);
}

export class DeviceView {
  private readonly state = new Map<string, DeviceState>();
  private readonly subs: Subscription[] = [];
  private unknownCount = 0;

  private readonly unsubscribeFrames: () => void;

  /** Devices whose recent history has not been read from the frames index yet. */
  private readonly unseeded: Set<string>;

  constructor(private readonly gw: ApiSource) {
    // Each device is seeded when first asked about, not at start: a site of 1 000 devices is
    // 60 000 frames to read and decode. A new frame of a device not seeded yet is left to its
    // seed, which reads it from the index (a frame is durable when it is announced).
    this.unseeded = new Set(this.siteDevices());
    this.unsubscribeFrames = gw.blockLog!.onFrames((rows) => {
      for (const f of rows) if (!this.unseeded.has(f.device)) this.onRow(f);
    });
    this.subs.push(
      gw.ingest.outcomes$.subscribe((e) => {
        if (e.outcome.status !== 'rejected' || e.device === undefined) return;
        this.onRejected(e.device, e.outcome.reason, e.outcome.detail, e.transport);
      }),
    );
  }

  close(): void {
    this.unsubscribeFrames();
    for (const s of this.subs) s.unsubscribe();
  }

  /** Devices of the site, sorted: enrolled here, or enrolled in the log by a sibling. */
  siteDevices(): string[] {
    const ids = new Set(this.gw.registry.list().map((d) => d.id));
    for (const d of this.gw.blockLog!.loggedDevices()) ids.add(d);
    return [...ids].sort();
  }

  /** Loads the recent history of a device from the frames index, the first time it is asked for. */
  private seed(device: string): void {
    if (!this.unseeded.delete(device)) return;
    for (const f of [...this.gw.frames.latest(device, HISTORY)].reverse()) this.onRow(f);
  }

  private onRow(f: FrameRow): void {
    const body = decodeFrameBody(f.frame);
    if (body) this.onFrame(f.device, f.rxTime, f.transport, body, this.gw.authors.name(f.heardBy));
  }

  private known(device: string): boolean {
    return this.gw.registry.get(device) !== undefined || this.gw.blockLog!.loggedKeys(device).length > 0;
  }

  private get(device: string): DeviceState | undefined {
    let s = this.state.get(device);
    if (!s) {
      if (!this.known(device)) {
        if (this.unknownCount >= MAX_UNKNOWN) return undefined;
        this.unknownCount++;
      }
      s = { readings: new Map(), rejections: { total: 0, byReason: {} } };
      this.state.set(device, s);
    }
    return s;
  }

  onFrame(device: string, rxTime: number, transport: string, body: UplinkBody, heardBy: string): void {
    const s = this.get(device);
    if (!s) return;
    const last = s.lastFrame;
    if (last && last.rxTime > rxTime) return; // a late sync of an older frame
    if (last && last.rxTime === rxTime && last.boot === body.boot && last.seq === body.seq) return; // seen
    s.lastFrame = { rxTime, heardBy, transport, boot: body.boot, seq: body.seq };
    if (body.type !== 'reading') return;
    const pack = resolvePack(body.records);
    if (!pack.ok) return;
    for (const r of pack.value) {
      const name = shortName(device, r.name);
      const value = recordValue(r);
      const prev = s.readings.get(name);
      const history = prev ? prev.history : [];
      const num = typeof value === 'boolean' ? Number(value) : value;
      if (typeof num === 'number' && Number.isFinite(num)) {
        history.push(num);
        if (history.length > HISTORY) history.shift();
      }
      s.readings.set(name, { name, value, at: rxTime, history, ...(r.unit !== undefined && { unit: r.unit }) });
      if (s.readings.size > MAX_READINGS_PER_DEVICE) dropStalest(s.readings);
    }
  }

  onRejected(device: string, reason: string, detail: string, transport: string, at = Date.now()): void {
    const s = this.get(device);
    if (!s) return;
    s.rejections.total++;
    s.rejections.byReason[reason] = (s.rejections.byReason[reason] ?? 0) + 1;
    s.rejections.last = { reason, detail: detail.slice(0, 200), at, transport };
  }

  readings(device: string): Reading[] {
    this.seed(device);
    return [...(this.state.get(device)?.readings.values() ?? [])];
  }

  lastFrame(device: string): LastFrame | undefined {
    this.seed(device);
    return this.state.get(device)?.lastFrame;
  }

  rejections(device: string): Rejections {
    return this.state.get(device)?.rejections ?? { total: 0, byReason: {} };
  }

  /** Devices that sent rejected frames but are not enrolled (unknown kids, forged topics). */
  unknownDevices(): string[] {
    return [...this.state.keys()].filter((d) => !this.known(d));
  }

  battery(device: string): Reading | undefined {
    return this.readings(device).find((r) => BATTERY.test(r.name));
  }

  signal(device: string): Reading | undefined {
    return this.readings(device).find((r) => SIGNAL.test(r.name));
  }
}
