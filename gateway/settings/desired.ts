/**
 * The desired settings of every device, merged from the `settings` blocks held: per key the
 * last writer wins, the last writer being the block with the highest (lamport, author key)
 * (protocols/settings.ts `compareVersions`), then the least block hash (only an equivocating
 * author can make two blocks with one lamport). The result is a function of the set of blocks,
 * not of their arrival order, so siblings that hold the same blocks want the same values.
 */
import {
  compareVersions,
  type SettingValue,
  type SettingVersion,
  type SettingsRecord,
} from '../../protocols/settings.js';

export interface DesiredSetting {
  readonly value: SettingValue;
  readonly version: SettingVersion;
  /** The block that set it (hex). */
  readonly block: string;
  /** When it was asked for, on the asker's clock. */
  readonly at: number;
  readonly by?: string;
}

/** Negative when `a` loses to `b`. */
function compareSettings(a: DesiredSetting, b: DesiredSetting): number {
  return compareVersions(a.version, b.version) || (a.block < b.block ? 1 : a.block > b.block ? -1 : 0);
}

export class DesiredSettings {
  private readonly byDevice = new Map<string, Map<string, DesiredSetting>>();
  private readonly blocks = new Set<string>();

  /** Merges one settings block; returns the keys whose desired value changed (none for a block held already). */
  add(record: SettingsRecord, version: SettingVersion, block: string): string[] {
    if (this.blocks.has(block)) return [];
    this.blocks.add(block);
    let keys = this.byDevice.get(record.device);
    if (!keys) this.byDevice.set(record.device, (keys = new Map()));
    const changed: string[] = [];
    for (const [key, value] of record.values) {
      const next: DesiredSetting = {
        value,
        version,
        block,
        at: record.at,
        ...(record.by !== undefined && { by: record.by }),
      };
      const held = keys.get(key);
      if (held && compareSettings(held, next) >= 0) continue;
      keys.set(key, next);
      if (held?.value !== value) changed.push(key);
    }
    return changed;
  }

  get(device: string): ReadonlyMap<string, DesiredSetting> | undefined {
    return this.byDevice.get(device);
  }

  devices(): string[] {
    return [...this.byDevice.keys()].sort();
  }

  /** Device → key → value: what a comparison across gateways looks at. */
  values(): Record<string, Record<string, SettingValue>> {
    const out: Record<string, Record<string, SettingValue>> = {};
    for (const d of this.devices()) {
      const keys = [...this.byDevice.get(d)!].sort(([a], [b]) => (a < b ? -1 : 1));
      out[d] = Object.fromEntries(keys.map(([k, s]) => [k, s.value]));
    }
    return out;
  }
}
