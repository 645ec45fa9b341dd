/**
 * Forgetting advertisers: noble keeps a Peripheral (and per-uuid service,
 * characteristic and descriptor maps, and a "discovered" flag) for every
 * advertiser it ever heard, and its bindings keep their own per-uuid or
 * per-address records; none of it is ever dropped. On a factory floor full of
 * phones and tags with rotating random addresses that grows without end.
 *
 * `AdvertiserMemory` remembers when each uuid was last heard, in LRU order,
 * and forgets a uuid (here and in noble) once it has not been heard for
 * `forgetAfterMs`, or when more than `max` are remembered (oldest first).
 * Never forgotten: a uuid the caller keeps (an enrolled device's link
 * peripheral) and any peripheral noble does not show as `disconnected`
 * (connecting, connected, disconnecting): noble routes their events through
 * these maps. A forgotten advertiser heard again is simply discovered anew.
 */
import type { NobleCentral } from './ble-noble.js';

/** Default cap on remembered advertisers (noble's maps and ours). */
export const BLE_MAX_ADVERTISERS = 1000;
/** Default: an advertiser not heard for this long is forgotten. */
export const BLE_FORGET_AFTER_MS = 60_000;

type Dict = Record<string, unknown>;

/** The noble internals touched here (lib/noble.js, lib/websocket/bindings.js, lib/hci-socket/{bindings,gap}.js). */
interface NobleInternals {
  _peripherals?: Record<string, { state?: string; address?: string } | undefined>;
  _services?: Dict;
  _characteristics?: Dict;
  _descriptors?: Dict;
  _discoveredPeripheralUUids?: Dict;
  _bindings: {
    _peripherals?: Dict;
    _addresses?: Dict;
    _addresseTypes?: Dict;
    _connectable?: Dict;
    scannable?: Dict;
    _gap?: { _discoveries?: Dict };
  };
}

export class AdvertiserMemory {
  /** uuid → last heard (ms); Map order is least recently heard first. */
  private readonly heard = new Map<string, number>();
  forgotten = 0;

  constructor(
    private readonly noble: NobleCentral,
    private readonly max: number = BLE_MAX_ADVERTISERS,
    private readonly forgetAfterMs: number = BLE_FORGET_AFTER_MS,
  ) {}

  get size(): number {
    return this.heard.size;
  }

  /** Sizes of noble's own per-peripheral maps (status, tests). */
  nobleSizes(): { peripherals: number; discovered: number; bindings: number; gap: number } {
    const n = this.noble as unknown as NobleInternals;
    const b = n._bindings;
    return {
      peripherals: Object.keys(n._peripherals ?? {}).length,
      discovered: Object.keys(n._discoveredPeripheralUUids ?? {}).length,
      bindings: Object.keys(b._peripherals ?? b._addresses ?? {}).length,
      gap: Object.keys(b._gap?._discoveries ?? {}).length,
    };
  }

  /** Records a hearing; true when past the cap (plus `kept`, which never go): sweep now. */
  heardNow(uuid: string, now: number, kept: number): boolean {
    this.heard.delete(uuid);
    this.heard.set(uuid, now);
    return this.heard.size > this.max + kept;
  }

  /** Forgets stale advertisers, then the least recently heard beyond the cap. */
  sweep(now: number, keep: ReadonlySet<string>): void {
    let excess = this.heard.size - this.max;
    for (const [uuid, at] of this.heard) {
      if (excess <= 0 && now - at < this.forgetAfterMs) break; // the rest were heard later
      if (keep.has(uuid) || !this.idle(uuid)) continue;
      this.forget(uuid);
      excess--;
    }
    this.trimGap(keep);
  }

  private idle(uuid: string): boolean {
    const state = (this.noble as unknown as NobleInternals)._peripherals?.[uuid]?.state;
    return state === undefined || state === 'disconnected';
  }

  private forget(uuid: string): void {
    const n = this.noble as unknown as NobleInternals;
    const b = n._bindings;
    const address = n._peripherals?.[uuid]?.address;
    this.heard.delete(uuid);
    // Each map is optional: noble versions and bindings differ in which they keep.
    for (const m of [
      n._peripherals,
      n._services,
      n._characteristics,
      n._descriptors,
      n._discoveredPeripheralUUids,
      b._peripherals,
      b._addresses,
      b._addresseTypes,
      b._connectable,
      b.scannable,
    ])
      if (m) delete m[uuid];
    if (address && b._gap?._discoveries) delete b._gap._discoveries[address];
    this.forgotten++;
  }

  /**
   * The HCI gap records every address it hears, including advertisers without
   * the scanned service that noble never reports (so never in `heard`). Past
   * the cap, the oldest-inserted are dropped; a dropped one only loses the
   * scan-response merging of its next report.
   */
  private trimGap(keep: ReadonlySet<string>): void {
    const n = this.noble as unknown as NobleInternals;
    const d = n._bindings._gap?._discoveries;
    if (!d) return;
    const keys = Object.keys(d);
    if (keys.length <= this.max) return;
    const kept = new Set<string>();
    for (const uuid of keep) {
      const a = n._peripherals?.[uuid]?.address;
      if (a) kept.add(a);
    }
    for (const p of Object.values(n._peripherals ?? {}))
      if (p?.address && p.state !== 'disconnected') kept.add(p.address);
    let excess = keys.length - this.max;
    for (const a of keys) {
      if (excess <= 0) break;
      if (kept.has(a)) continue;
      delete d[a];
      excess--;
    }
  }
}
