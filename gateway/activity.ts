/** Which devices are online: seen recently on some transport and not since disconnected. */
export class DeviceActivity {
  private readonly lastSeen = new Map<string, number>();
  private readonly byClient = new Map<string, Set<string>>();

  constructor(private readonly timeoutMs: number) {}

  seen(device: string, via?: string, now = Date.now()): void {
    this.lastSeen.set(device, now);
    if (via !== undefined) {
      let s = this.byClient.get(via);
      if (!s) this.byClient.set(via, (s = new Set()));
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
}
