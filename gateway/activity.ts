/**
 * Which devices are online: seen recently on some transport and not since disconnected.
 * Devices are enrolled ones (a frame was stored), so `lastSeen` is bounded by the site. The
 * connections each device was heard over are bounded separately: a frame's outcome can land
 * after its connection closed (ingest is asynchronous), recording a connection no `gone` will
 * ever clear; past MAX_CONNECTIONS the stale ones (every device heard over them timed out)
 * are swept, then the oldest.
 */
const MAX_CONNECTIONS = 4096;

export class DeviceActivity {
  private readonly lastSeen = new Map<string, number>();
  private readonly byClient = new Map<string, Set<string>>();

  constructor(
    private readonly timeoutMs: number,
    private readonly maxConnections = MAX_CONNECTIONS,
  ) {}

  seen(device: string, via?: string, now = Date.now()): void {
    this.lastSeen.set(device, now);
    if (via !== undefined) {
      let s = this.byClient.get(via);
      if (!s) {
        if (this.byClient.size >= this.maxConnections) this.sweep(now);
        this.byClient.set(via, (s = new Set()));
      }
      s.add(device);
    }
  }

  /** A connection closed: its devices are offline until heard from again. */
  gone(via: string): void {
    for (const d of this.byClient.get(via) ?? []) this.lastSeen.delete(d);
    this.byClient.delete(via);
  }

  online(now = Date.now()): number {
    let n = 0;
    for (const t of this.lastSeen.values()) if (now - t <= this.timeoutMs) n++;
    return n;
  }

  lastSeenAt(device: string): number | undefined {
    return this.lastSeen.get(device);
  }

  /** Connections remembered (tests, status). */
  get connections(): number {
    return this.byClient.size;
  }

  private sweep(now: number): void {
    const fresh = (d: string): boolean => now - (this.lastSeen.get(d) ?? -Infinity) <= this.timeoutMs;
    for (const [via, devices] of this.byClient) if (![...devices].some(fresh)) this.byClient.delete(via);
    // All fresh (a flood of live connections): the oldest-recorded go first, down to 3/4 so
    // that the next sweep is a quarter of the cap away.
    for (const via of this.byClient.keys()) {
      if (this.byClient.size <= (this.maxConnections * 3) >> 2) break;
      this.byClient.delete(via);
    }
  }
}
