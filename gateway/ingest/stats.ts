/** Ingest counters, by outcome and reason and by transport. */
import type { IngestOutcome } from './outcome.js';

export class IngestStats {
  received = 0;
  stored = 0;
  duplicates = 0;
  readonly rejected = new Map<string, number>();
  readonly failed = new Map<string, number>();
  readonly byTransport = new Map<string, number>();
  /** Frame-to-durable latency samples (ms) since the last `takeLatencies()`. */
  private latencies: number[] = [];

  count(o: IngestOutcome, transport: string, latencyMs: number): void {
    this.received++;
    this.byTransport.set(transport, (this.byTransport.get(transport) ?? 0) + 1);
    switch (o.status) {
      case 'stored':
        this.stored++;
        if (this.latencies.length < 100_000) this.latencies.push(latencyMs);
        break;
      case 'duplicate':
        this.duplicates++;
        break;
      case 'rejected':
        this.rejected.set(o.reason, (this.rejected.get(o.reason) ?? 0) + 1);
        break;
      case 'failed':
        this.failed.set(o.reason, (this.failed.get(o.reason) ?? 0) + 1);
        break;
    }
  }

  rejectedTotal(): number {
    let n = 0;
    for (const v of this.rejected.values()) n += v;
    return n;
  }

  takeLatencies(): number[] {
    const l = this.latencies;
    this.latencies = [];
    return l;
  }

  snapshot(): Record<string, unknown> {
    return {
      received: this.received,
      stored: this.stored,
      duplicates: this.duplicates,
      rejected: Object.fromEntries(this.rejected),
      failed: Object.fromEntries(this.failed),
      byTransport: Object.fromEntries(this.byTransport),
    };
  }
}
