/**
 * Firmware as the operator sees it: the releases and each rollout's state, stages and devices,
 * folded from the log. One shape for `gateway firmware list|status --json` and GET /api/firmware.
 */
import type { FirmwareStore } from './releases.js';
import { type DeviceProgress, rolloutStatus } from './rollout.js';
import { formatOfferWindow } from './window.js';

export interface ReleaseRow {
  readonly model: string;
  readonly version: string;
  readonly size: number;
  readonly digest: string;
  readonly minVersion: string;
  readonly slot: number;
  readonly key: string;
  readonly author: string;
  readonly complete: boolean;
}

export interface RolloutRow {
  readonly id: string;
  readonly model: string | undefined;
  readonly version: string | undefined;
  /** aborted, halted, done, paused or running. */
  readonly state: string;
  readonly stage: number;
  /** Cumulative device count of each stage (the canary first, when there is one). */
  readonly stages: readonly number[];
  /** Device states counted per stage (the devices a stage adds to the one before). */
  readonly stageCounts: readonly Record<string, number>[];
  /** The offer window, `HH:MM-HH:MM` in the gateway's local time, or null. */
  readonly window: string | null;
  readonly counts: Record<string, number>;
  readonly devices: Record<string, DeviceProgress>;
}

export function releaseRows(fw: FirmwareStore): ReleaseRow[] {
  return [...fw.releases.values()].map((r) => ({
    model: r.signed.manifest.model,
    version: r.signed.manifest.version,
    size: r.signed.manifest.size,
    digest: r.digest,
    minVersion: r.signed.manifest.minVersion,
    slot: r.signed.manifest.slot,
    key: r.keyName,
    author: r.author,
    complete: fw.complete(r),
  }));
}

/** One rollout as the log holds it; undefined for an id the log does not hold. */
export function rolloutRow(fw: FirmwareStore, id: string): RolloutRow | undefined {
  const st = rolloutStatus(fw, id);
  if (!st) return undefined;
  const rel = fw.releases.get(st.digest)?.signed.manifest;
  const order = [...st.devices.keys()];
  const stageCounts = st.stages.map((size, i) => {
    const c: Record<string, number> = {};
    for (const d of order.slice(st.stages[i - 1] ?? 0, size)) {
      const s = st.devices.get(d)!.state;
      c[s] = (c[s] ?? 0) + 1;
    }
    return c;
  });
  return {
    id,
    model: rel?.model,
    version: rel?.version,
    state: st.state,
    stage: st.stage,
    stages: st.stages,
    stageCounts,
    window: st.window ? formatOfferWindow(st.window) : null,
    counts: st.counts,
    devices: Object.fromEntries(st.devices),
  };
}

/** GET /api/firmware: every release and every rollout. */
export function firmwareView(fw: FirmwareStore): { releases: ReleaseRow[]; rollouts: RolloutRow[] } {
  return {
    releases: releaseRows(fw),
    rollouts: [...fw.rollouts.keys()].sort().map((id) => rolloutRow(fw, id)!),
  };
}
