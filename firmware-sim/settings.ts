/**
 * A virtual device's settings (its side of the gateway's device twin): it applies a signed
 * settings message (protocols/settings.ts) from any trusted gateway, keeps per key the value of
 * the highest version (lamport, gateway key) it applied, so a stale or concurrent delivery from
 * another gateway never makes it go back, persists them (a real device keeps them in flash),
 * answers with a signed command-ack, and reports what it holds in every reading as SenML
 * records `set.<key>`. Checks, in order: signature under a trusted gateway key, addressed to
 * this device, not expired on the device's clock, at most MAX_SETTINGS keys held.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  AckStatus,
  decodeSign1,
  fromHex,
  kidToDeviceId,
  type SenmlRecord,
  sigStructure,
  toHex,
} from '../protocols/index.js';
import {
  compareVersions,
  decodeSettingsMessage,
  isSettingsPayload,
  MAX_SETTINGS,
  SETTING_RECORD_PREFIX,
  type SettingValue,
  type SettingVersion,
} from '../protocols/settings.js';
import type { TrustedGateway } from './actuators.js';
import { verifySignature } from './crypto.js';
import type { DeviceFrame, VirtualDevice } from './device.js';

interface Held {
  readonly value: SettingValue;
  readonly version: SettingVersion;
}

export interface SettingsVerdict {
  readonly status: number;
  readonly detail?: string;
  /** The message id to answer; undefined when it could not be read (no ack). */
  readonly id?: Uint8Array;
  /** Keys whose value changed. */
  readonly applied: readonly string[];
}

export interface DeviceSettingsOptions {
  readonly device: string;
  readonly gateways: readonly TrustedGateway[];
  /** A JSON file keeping the settings across restarts (written whole, through a rename); none: memory only. */
  readonly file?: string;
}

export class DeviceSettings {
  private readonly held = new Map<string, Held>();
  readonly stats = { applied: 0, stale: 0, refused: 0 };

  constructor(private readonly opts: DeviceSettingsOptions) {
    if (opts.file) this.load(opts.file);
  }

  get(key: string): SettingValue | undefined {
    return this.held.get(key)?.value;
  }

  values(): Record<string, SettingValue> {
    return Object.fromEntries([...this.held].map(([k, h]) => [k, h.value]));
  }

  /** What every reading reports: `set.<key>` records. */
  records(): SenmlRecord[] {
    return [...this.held].map(([k, { value: v }]) => {
      const n = `${SETTING_RECORD_PREFIX}${k}`;
      return typeof v === 'number' ? { n, v } : typeof v === 'boolean' ? { n, vb: v } : { n, vs: v };
    });
  }

  /** Checks and applies one settings message frame. */
  handle(frame: Uint8Array, deviceTimeMs: number): SettingsVerdict {
    const v = this.check(frame, deviceTimeMs);
    if (v.status !== AckStatus.ok) this.stats.refused++;
    return v;
  }

  private check(frame: Uint8Array, now: number): SettingsVerdict {
    const cose = decodeSign1(frame);
    if (!cose.ok) return { status: AckStatus.rejected, detail: `undecodable: ${cose.error.code}`, applied: [] };
    const { kid, protectedBytes, payload, signature } = cose.value;
    const msg = decodeSettingsMessage(payload);
    const id = msg.ok ? msg.value.id : undefined;
    const gw = this.opts.gateways.find((g) => g.id === kidToDeviceId(kid));
    if (!gw || !verifySignature(gw.publicKey, sigStructure(protectedBytes, payload), signature))
      return {
        status: AckStatus.badSignature,
        detail: 'not signed by a trusted gateway',
        applied: [],
        ...(id && { id }),
      };
    if (!msg.ok) return { status: AckStatus.rejected, detail: `bad settings: ${msg.error.message}`, applied: [] };
    const m = msg.value;
    const base = { id: m.id };
    if (m.target !== this.opts.device)
      return { ...base, status: AckStatus.rejected, detail: `addressed to ${m.target}`, applied: [] };
    if (now > m.expires)
      return {
        ...base,
        status: AckStatus.expired,
        detail: `expired ${now - m.expires} ms ago by the device clock`,
        applied: [],
      };
    const newKeys = m.entries.filter((e) => !this.held.has(e.key)).length;
    if (this.held.size + newKeys > MAX_SETTINGS)
      return { ...base, status: AckStatus.rejected, detail: `at most ${MAX_SETTINGS} settings`, applied: [] };
    const applied: string[] = [];
    const kept: string[] = [];
    for (const e of m.entries) {
      const h = this.held.get(e.key);
      const order = h ? compareVersions(e.version, h.version) : 1;
      if (order < 0) kept.push(e.key);
      if (order <= 0) continue;
      this.held.set(e.key, { value: e.value, version: e.version });
      if (h?.value !== e.value) applied.push(e.key);
    }
    this.stats.applied += applied.length;
    this.stats.stale += kept.length;
    if (this.opts.file) this.save(this.opts.file);
    return {
      ...base,
      status: AckStatus.ok,
      applied,
      ...(kept.length > 0 && { detail: `kept newer ${kept.join(', ')}`.slice(0, 256) }),
    };
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const o = JSON.parse(text) as Record<string, { value: SettingValue; lamport: number; author: string }>;
    for (const [k, h] of Object.entries(o))
      this.held.set(k, {
        value: h.value,
        version: { lamport: h.lamport, author: fromHex(h.author) ?? new Uint8Array() },
      });
  }

  private save(file: string): void {
    const o = Object.fromEntries(
      [...this.held].map(([k, h]) => [
        k,
        { value: h.value, lamport: h.version.lamport, author: toHex(h.version.author) },
      ]),
    );
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(o)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  }
}

/**
 * Wraps a link's `onCommand` (e.g. actuators.ts `commandHandler`): settings messages go to
 * `settings`, answered with a signed command-ack; anything else to `next`. The device's readings
 * report the settings after whatever `next` reports (actuator states).
 */
export function settingsHandler(
  settings: DeviceSettings,
  device: VirtualDevice,
  send: (ack: DeviceFrame) => void,
  next?: (frame: Uint8Array) => void,
): (frame: Uint8Array) => void {
  const before = device.actuatorRecords;
  device.actuatorRecords = () => [...(before?.() ?? []), ...settings.records()];
  return (frame) => {
    const cose = decodeSign1(frame);
    if (!cose.ok || !isSettingsPayload(cose.value.payload)) return next?.(frame);
    const now = Date.now();
    const v = settings.handle(frame, device.deviceTime(now));
    if (v.id) send(device.commandAck(v.id, v.status, v.detail, now));
  };
}
