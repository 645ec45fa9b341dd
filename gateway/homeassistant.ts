/**
 * Home Assistant MQTT discovery through the embedded broker: for every SenML
 * reading of every device (announced up front for enrolled devices whose
 * model has a profile, else when first seen) a retained discovery config, and
 * a retained state topic that each durable frame updates. Availability follows
 * the gateway's retained status topic; values expire after the online timeout.
 * https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
 */
import { resolvePack, topics } from '../protocols/index.js';
import { shortName } from './api/device-view.js';
import type { Logger } from './logger.js';
import type { RecordProfile, SensorProfile } from './profiles.js';
import type { Registry } from './registry.js';
import type { FrameRow } from './log/frames-index.js';
import { decodeFrameBody } from './api/decode.js';
import type { EmbeddedBroker } from './transports/mqtt-broker.js';

export interface HomeAssistantOptions {
  readonly prefix: string;
  readonly gatewayId: string;
  /** HA marks a value unavailable when no update came within this time. */
  readonly expireAfterSeconds: number;
}

/** SenML unit → HA unit of measurement (and a value conversion where HA wants another unit). */
const UNITS: Record<string, { unit?: string; convert?: (v: number) => number; deviceClass?: string }> = {
  Cel: { unit: '°C', deviceClass: 'temperature' },
  '%RH': { unit: '%', deviceClass: 'humidity' },
  Pa: { unit: 'Pa', deviceClass: 'atmospheric_pressure' },
  'm/s2': { unit: 'm/s²' },
  V: { unit: 'V', deviceClass: 'voltage' },
  A: { unit: 'A', deviceClass: 'current' },
  W: { unit: 'W', deviceClass: 'power' },
  Wh: { unit: 'Wh', deviceClass: 'energy' },
  lx: { unit: 'lx', deviceClass: 'illuminance' },
  '%EL': { unit: '%', deviceClass: 'battery' },
  // HA's signal_strength takes dB or dBm; SenML has dBW (dBm = dBW + 30).
  dBW: { unit: 'dBm', convert: (v) => v + 30, deviceClass: 'signal_strength' },
  ppm: { unit: 'ppm' },
  count: {},
};

/** HA ids allow [a-zA-Z0-9_-] only. */
const haId = (s: string): string => s.replace(/[^a-zA-Z0-9_-]/g, '_');
/** Entity ids are lower-case [a-z0-9_]. */
const entitySlug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9_]/g, '_');

interface Entity {
  readonly component: 'sensor' | 'binary_sensor';
  readonly stateTopic: string;
  readonly convert?: (v: number) => number;
}

export class HomeAssistantDiscovery {
  private readonly entities = new Map<string, Entity>();
  private readonly unsubscribe: () => void;
  private readonly node: string;

  constructor(
    private readonly broker: EmbeddedBroker,
    private readonly registry: Registry,
    /** Subscribes to the frames entering the merged history (BlockLog.onFrames); returns an unsubscribe. */
    frames: (fn: (rows: FrameRow[]) => void) => () => void,
    private readonly profiles: Map<string, SensorProfile>,
    private readonly opts: HomeAssistantOptions,
    private readonly log: Logger,
  ) {
    this.node = haId(`outpost_${opts.gatewayId}`);
    for (const d of registry.list()) {
      if (d.revokedAt !== undefined || d.model === undefined) continue;
      for (const r of profiles.get(d.model)?.records ?? []) this.announce(d.id, r.name, r.unit, r.binary);
    }
    // States from the merged history: frames this gateway heard and those synced from siblings.
    this.unsubscribe = frames((rows) => {
      for (const row of rows) {
        const body = decodeFrameBody(row.frame);
        if (body?.type !== 'reading') continue;
        const pack = resolvePack(body.records);
        if (!pack.ok) continue;
        for (const r of pack.value) {
          const name = shortName(row.device, r.name);
          const value = r.value ?? r.boolValue ?? r.sum;
          if (value === undefined) continue; // strings and data: not a sensor state
          const e = this.announce(row.device, name, r.unit, typeof value === 'boolean');
          const state =
            typeof value === 'boolean' ? (value ? 'ON' : 'OFF') : String(e.convert ? e.convert(value) : value);
          // States carry readings: principals at the broker get them only if they may read the frame's policy.
          this.publish(e.stateTopic, state, row.policy);
        }
      }
    });
  }

  /** Topic of the retained discovery config of one reading. */
  configTopic(device: string, name: string, binary = false): string {
    return `${this.opts.prefix}/${binary ? 'binary_sensor' : 'sensor'}/${this.node}/${haId(`${device}_${name}`)}/config`;
  }

  /** Topic of one reading's state. */
  stateTopic(device: string, name: string): string {
    return `outpost/v1/gw/${this.opts.gatewayId}/ha/${device}/${haId(name)}`;
  }

  private announce(device: string, name: string, unit: string | undefined, binary: boolean): Entity {
    const key = `${device}\u0000${name}`;
    const known = this.entities.get(key);
    if (known) return known;
    const rec = this.device(device);
    const profile: RecordProfile | undefined =
      rec?.model !== undefined ? this.profiles.get(rec.model)?.records.find((r) => r.name === name) : undefined;
    const u = unit !== undefined ? UNITS[unit] : undefined;
    const component = binary ? 'binary_sensor' : 'sensor';
    const e: Entity = {
      component,
      stateTopic: this.stateTopic(device, name),
      ...(u?.convert && { convert: u.convert }),
    };
    this.entities.set(key, e);
    const deviceClass = profile?.deviceClass ?? u?.deviceClass;
    const config: Record<string, unknown> = {
      name,
      unique_id: haId(`outpost_${device}_${name}`),
      // HA 2025.10 replaced object_id with default_entity_id (object_id stopped working in 2026.4).
      default_entity_id: `${component}.${entitySlug(`outpost_${device}_${name}`)}`,
      state_topic: e.stateTopic,
      availability_topic: topics.gatewayStatus(this.opts.gatewayId),
      availability_template: '{{ value_json.state }}',
      payload_available: 'online',
      payload_not_available: 'offline',
      expire_after: Math.max(1, Math.round(this.opts.expireAfterSeconds)),
      device: {
        identifiers: [haId(`outpost_${device}`)],
        name: rec?.name ?? device,
        manufacturer: 'Outpost',
        ...(rec?.model !== undefined && { model: rec.model }),
        ...(rec?.site !== undefined && { suggested_area: rec.site }),
        via_device: this.node,
      },
      origin: { name: 'Outpost gateway' },
      ...(deviceClass !== undefined && { device_class: deviceClass }),
      ...(binary ? { payload_on: 'ON', payload_off: 'OFF' } : {}),
      ...(!binary && u?.unit !== undefined && { unit_of_measurement: u.unit }),
      ...(!binary && { state_class: profile?.stateClass ?? 'measurement' }),
      ...(!binary && profile?.precision !== undefined && { suggested_display_precision: profile.precision }),
    };
    this.publish(this.configTopic(device, name, binary), JSON.stringify(config));
    return e;
  }

  private device(id: string): { name?: string; model?: string; site?: string } | undefined {
    return this.registry.get(id);
  }

  private publish(topic: string, payload: string, policy?: string): void {
    this.broker
      .publish(topic, payload, { qos: 1, retain: true, ...(policy !== undefined && { policy }) })
      .catch((err: unknown) => this.log.warn({ err, topic }, 'Home Assistant publish failed'));
  }

  /** Entities announced so far. */
  get size(): number {
    return this.entities.size;
  }

  close(): void {
    this.unsubscribe();
  }
}
