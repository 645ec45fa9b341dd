/**
 * What ingest does with each answer besides returning it: counts it (stats, for metrics and the
 * status line), emits it on `outcomes$` (per-device rejection views), and logs duplicates,
 * rejections and failures, rate-limited per kind.
 */
import { Subject } from 'rxjs';
import { type Logger, LogThrottle } from '../logger.js';
import type { FrameMeta, IngestOutcome, OutcomeEvent } from './outcome.js';
import { IngestStats } from './stats.js';

export class OutcomeReporter {
  readonly stats = new IngestStats();
  /** Every outcome (stored, duplicate, rejected, failed), in answer order. */
  readonly outcomes$ = new Subject<OutcomeEvent>();
  readonly throttle: LogThrottle;

  constructor(log: Logger) {
    this.throttle = new LogThrottle(log);
  }

  report(o: IngestOutcome, meta: FrameMeta, latencyMs: number, device?: string): IngestOutcome {
    this.stats.count(o, meta.transport, latencyMs);
    const dev = 'device' in o && o.device !== undefined ? o.device : (device ?? meta.claimedDevice);
    this.outcomes$.next({
      outcome: o,
      transport: meta.transport,
      latencyMs,
      ...(dev !== undefined && { device: dev }),
    });
    if (o.status === 'duplicate') {
      // A resend after a lost ack, or a replay of a stored frame: harmless, but worth seeing.
      this.throttle.info(
        'duplicate',
        { device: o.device, boot: o.boot, seq: o.seq, transport: meta.transport, source: meta.source },
        'duplicate frame acked again, not stored',
      );
    } else if (o.status === 'rejected') {
      this.throttle.warn(
        `rejected:${o.reason}`,
        {
          device: o.device ?? device,
          reason: o.reason,
          transport: meta.transport,
          source: meta.source,
          detail: o.detail,
        },
        'frame rejected',
      );
    } else if (o.status === 'failed') {
      this.throttle.warn(
        `failed:${o.reason}`,
        { device, reason: o.reason, transport: meta.transport, source: meta.source, detail: o.detail },
        'frame not ingested (will be retried by the sender)',
      );
    }
    return o;
  }
}
