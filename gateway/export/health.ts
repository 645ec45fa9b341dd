/**
 * Gateway health as alerts (alerts.ts): each check raises its condition while it holds and
 * resolves it when it clears, every `alerts.checkSeconds`.
 *
 *   disk-low             free bytes of the data directory below alerts.diskLowBytes
 *                        (default twice ingest.minFreeBytes: a warning before ingest refuses)
 *   sibling-unreachable  a sync peer not reached for alerts.siblingUnreachableSeconds
 *   sink-lagging         a data sink behind for longer than its lagAlertSeconds
 *   device-offline       an enrolled device heard before and silent for alerts.deviceOfflineSeconds
 *   storage-budget       ingest will be refused at the free-space floor: the budget does not fit
 *                        the disk, or it is exceeded and nothing more may be pruned (gateway/log/budget.ts)
 */
import type { AlertsConfig, SinkConfig } from './config.js';
import type { AlertManager } from './alerts.js';
import type { ExporterStatus } from './exporter.js';

export interface HealthInputs {
  /** Free bytes of the data directory (NaN when unknown). */
  readonly freeBytes: () => number;
  readonly minFreeBytes: number;
  readonly siblings: () => readonly { id: string; lastOkAt?: number; lastError?: string }[];
  readonly sinks: () => readonly ExporterStatus[];
  readonly devices: () => readonly string[];
  readonly lastSeenAt: (device: string) => number | undefined;
  readonly now?: () => number;
  /** The storage budget's status (its `warning`, if any). */
  readonly storage?: () =>
    | { warning?: string; refuseInHours?: number; usedBytes: number; maxBytes: number }
    | undefined;
}

export class HealthChecks {
  private readonly timer: NodeJS.Timeout;
  private readonly started: number;
  private readonly now: () => number;
  private readonly heard = new Map<string, number>();

  constructor(
    private readonly alerts: AlertManager,
    private readonly cfg: AlertsConfig,
    private readonly sinkCfg: readonly SinkConfig[],
    private readonly inputs: HealthInputs,
  ) {
    this.now = inputs.now ?? Date.now;
    this.started = this.now();
    this.timer = setInterval(() => this.check(), cfg.checkSeconds * 1000);
    this.timer.unref();
  }

  private set(key: string, holds: boolean, kind: string, message: string, detail?: Record<string, unknown>): void {
    if (holds) this.alerts.raise(key, kind, message, detail);
    else this.alerts.resolve(key);
  }

  check(): void {
    const now = this.now();
    const floor = this.cfg.diskLowBytes ?? 2 * this.inputs.minFreeBytes;
    const free = this.inputs.freeBytes();
    if (floor > 0 && Number.isFinite(free))
      this.set('health/disk-low', free < floor, 'disk-low', `data directory has ${free} bytes free (below ${floor})`, {
        free,
        floor,
      });
    const st = this.inputs.storage?.();
    if (st)
      this.set(
        'health/storage-budget',
        st.warning !== undefined,
        'storage-budget',
        `storage budget: ${st.warning ?? 'ok'}`,
        {
          usedBytes: st.usedBytes,
          maxBytes: st.maxBytes,
          ...(st.refuseInHours !== undefined && { refuseInHours: st.refuseInHours }),
        },
      );
    const unreachableMs = this.cfg.siblingUnreachableSeconds * 1000;
    for (const s of this.inputs.siblings()) {
      const since = s.lastOkAt ?? this.started;
      this.set(
        `health/sibling-unreachable/${s.id}`,
        now - since > unreachableMs,
        'sibling-unreachable',
        `sibling ${s.id} not reached for ${Math.round((now - since) / 1000)} s${s.lastError ? `: ${s.lastError}` : ''}`,
        { sibling: s.id },
      );
    }
    for (const st of this.inputs.sinks()) {
      const limit = this.sinkCfg.find((c) => c.name === st.sink);
      const max = limit && limit.type !== 'http' ? limit.lagAlertSeconds : Infinity;
      this.set(
        `health/sink-lagging/${st.sink}`,
        st.lagSeconds > max,
        'sink-lagging',
        `sink ${st.sink} is ${st.lagBlocks} blocks behind for ${Math.round(st.lagSeconds)} s${st.lastError ? ` (${st.lastError})` : ''}`,
        { sink: st.sink, lagBlocks: st.lagBlocks },
      );
    }
    const offlineMs = this.cfg.deviceOfflineSeconds * 1000;
    if (offlineMs > 0)
      for (const d of this.inputs.devices()) {
        // A closed connection forgets its devices in the activity table: remember when each was last heard.
        const heard = this.inputs.lastSeenAt(d);
        if (heard !== undefined) this.heard.set(d, heard);
        const seen = this.heard.get(d);
        if (seen === undefined) continue; // never heard since start: not known to be offline
        this.set(
          `health/device-offline/${d}`,
          now - seen > offlineMs,
          'device-offline',
          `device ${d} silent for ${Math.round((now - seen) / 1000)} s`,
          { device: d },
        );
      }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
