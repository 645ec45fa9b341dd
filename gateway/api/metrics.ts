/**
 * Prometheus metrics (prom-client), one registry per gateway so several
 * gateways in one process (tests) do not share counters. Counters follow the
 * ingest outcome stream; gauges are read when scraped.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import type { ExporterStatus } from '../export/exporter.js';
import type { BudgetStatus } from '../log/budget.js';
import type { ApiSource } from './source.js';

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly sub: Subscription;

  constructor(gw: ApiSource, opts: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    r.setDefaultLabels({ gateway: gw.config.gateway.id });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: r, prefix: 'outpost_' });
    const received = new Counter({
      name: 'outpost_frames_received_total',
      help: 'Frames submitted to ingest, by transport',
      labelNames: ['transport'],
      registers: [r],
    });
    const accepted = new Counter({
      name: 'outpost_frames_accepted_total',
      help: 'Frames stored durably, by transport',
      labelNames: ['transport'],
      registers: [r],
    });
    const duplicates = new Counter({
      name: 'outpost_frames_duplicate_total',
      help: 'Resent frames already stored (acked again, not stored)',
      labelNames: ['transport'],
      registers: [r],
    });
    const rejected = new Counter({
      name: 'outpost_frames_rejected_total',
      help: 'Frames refused for good, by reason and transport',
      labelNames: ['reason', 'transport'],
      registers: [r],
    });
    const failed = new Counter({
      name: 'outpost_frames_failed_total',
      help: 'Frames not ingested for a transient reason (not acked; the sender retries)',
      labelNames: ['reason', 'transport'],
      registers: [r],
    });
    const latency = new Histogram({
      name: 'outpost_ingest_latency_seconds',
      help: 'Frame submit to durable in the store, for stored frames',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: [r],
    });
    this.sub = gw.ingest.outcomes$.subscribe((e) => {
      const o = e.outcome;
      received.inc({ transport: e.transport });
      if (o.status === 'stored') {
        accepted.inc({ transport: e.transport });
        latency.observe(e.latencyMs / 1000);
      } else if (o.status === 'duplicate') duplicates.inc({ transport: e.transport });
      else if (o.status === 'rejected') rejected.inc({ reason: o.reason, transport: e.transport });
      else failed.inc({ reason: o.reason, transport: e.transport });
    });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read());
        },
      });
    };
    gauge('outpost_verify_queue_depth', 'Signature checks waiting for a verify worker', () => gw.pool.queued);
    gauge('outpost_ingest_pending', 'Frames submitted and not yet answered', () => gw.ingest.pending);
    gauge('outpost_store_bytes', 'Bytes the store uses on disk', () => gw.store.sizeBytes());
    // Free-space guard (ingest.minFreeBytes): the last statfs reading (NaN until one is taken; none with the guard off).
    gauge(
      'outpost_store_free_bytes',
      "Free bytes on the data directory's filesystem, last reading of the free-space guard",
      () => gw.space.lastFree,
    );
    gauge(
      'outpost_store_min_free_bytes',
      'The free-space floor below which writes are refused (0: guard off)',
      () => gw.space.minFreeBytes,
    );
    new Counter({
      name: 'outpost_disk_low_refusals_total',
      help: 'Writes refused because free space was below the floor (ingest commits, sync applies, authoring)',
      registers: [r],
      collect() {
        this.reset();
        this.inc(gw.space.refusals);
      },
    });
    // Storage budget (log.maxBytes): read once per scrape.
    const b =
      (read: (s: BudgetStatus) => number | null): (() => number) =>
      () => {
        const s = gw.budget?.status();
        return s === undefined ? Number.NaN : (read(s) ?? Number.NaN);
      };
    gauge(
      'outpost_storage_budget_bytes',
      'The storage budget, log.maxBytes resolved (0: none)',
      b((s) => s.maxBytes),
    );
    gauge(
      'outpost_storage_used_bytes',
      "Live bytes of the store's pages (what the budget counts)",
      b((s) => s.usedBytes),
    );
    gauge(
      'outpost_storage_budget_days',
      'Days of history the budget holds at the current rate',
      b((s) => s.budgetDays),
    );
    gauge(
      'outpost_storage_history_days',
      'Days of history held now',
      b((s) => s.historyDays),
    );
    gauge(
      'outpost_storage_pruned_blocks',
      'Blocks pruned for the budget since start',
      b((s) => s.blocksPruned),
    );
    gauge(
      'outpost_storage_warning',
      '1 while ingest may be refused at the free-space floor',
      b((s) => (s.warning ? 1 : 0)),
    );
    // Export (export.sinks, and the local rollups as sink "$rollups"): each exporter's status when scraped.
    const exporters = (): ExporterStatus[] => {
      const st = gw.exports?.status();
      return st ? [...st.sinks, ...(st.rollups ? [st.rollups] : [])] : [];
    };
    const perSink = (name: string, help: string, read: (e: ExporterStatus) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['sink'],
        registers: [r],
        collect() {
          this.reset();
          for (const e of exporters()) this.set({ sink: e.sink }, read(e));
        },
      });
    };
    perSink('outpost_export_lag_blocks', 'Blocks a sink may read and has not confirmed yet', (e) => e.lagBlocks);
    perSink('outpost_export_lag_seconds', 'How long a sink has been behind (0 when caught up)', (e) => e.lagSeconds);
    perSink('outpost_export_failing', '1 while deliveries to a sink fail (retried with backoff)', (e) =>
      e.state === 'failing' ? 1 : 0,
    );
    new Counter({
      name: 'outpost_export_frames_total',
      help: 'Frames a sink confirmed since start',
      labelNames: ['sink'],
      registers: [r],
      collect() {
        this.reset();
        for (const e of exporters()) this.inc({ sink: e.sink }, e.frames);
      },
    });
    gauge('outpost_store_frames', 'Frames in the store', () => gw.blockLog!.frames.count());
    gauge('outpost_devices_online', 'Devices heard from within the online timeout', () => gw.activity.online());
    gauge('outpost_devices_enrolled', 'Enrolled, unrevoked devices', () => gw.registry.activeCount());
    // Commands by final state (acked, refused, expired, no-route, no-lease, superseded), read from actuation's counters.
    new Counter({
      name: 'outpost_commands_total',
      help: 'Commands issued by rules, by final state (in-flight ones are not counted yet)',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const s = gw.actuation.actuation.stats;
        this.reset();
        for (const [state, n] of [
          ['acked', s.acked],
          ['refused', s.refused],
          ['expired', s.expired],
          ['no-route', s.noRoute],
          ['no-lease', s.noLease],
          ['superseded', s.superseded],
          ['interlocked', s.interlocked],
        ] as const)
          this.inc({ state }, n);
      },
    });
    gauge(
      'outpost_commands_in_flight',
      'Commands sent and waiting for an ack or expiry',
      () => gw.actuation.actuation.inFlight,
    );
    gauge(
      'outpost_command_refusal_reports',
      'Forged or replayed commands devices reported refusing',
      () => gw.actuation.actuation.stats.forgeryReports + gw.actuation.actuation.stats.replayReports,
    );
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.sub.unsubscribe();
    this.registry.clear();
  }
}
