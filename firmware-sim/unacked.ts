/**
 * A device's frames not acked yet, oldest first, found by (boot, seq) without building a key
 * string per frame and per ack: a map per boot, of frames by seq. Boots only grow and seq grows
 * within a boot, so insertion order is age order in both.
 */
export class UnackedFrames<F extends { readonly boot: number; readonly seq: number }> {
  private readonly byBoot = new Map<number, Map<number, F>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(frame: F): void {
    let m = this.byBoot.get(frame.boot);
    if (m === undefined) this.byBoot.set(frame.boot, (m = new Map()));
    if (!m.has(frame.seq)) this.count++;
    m.set(frame.seq, frame);
  }

  get(boot: number, seq: number): F | undefined {
    return this.byBoot.get(boot)?.get(seq);
  }

  /** Removes a frame; false if it was not there. */
  delete(boot: number, seq: number): boolean {
    const m = this.byBoot.get(boot);
    if (m === undefined || !m.delete(seq)) return false;
    this.count--;
    // A boot's map stays while it has frames, and the newest boot's (frames keep coming) always.
    if (m.size === 0 && boot !== this.newestBoot()) this.byBoot.delete(boot);
    return true;
  }

  /** Removes and returns the oldest frame. */
  shift(): F | undefined {
    for (const [boot, m] of this.byBoot) {
      for (const [seq, f] of m) {
        this.delete(boot, seq);
        return f;
      }
      if (boot !== this.newestBoot()) this.byBoot.delete(boot);
    }
    return undefined;
  }

  /** Oldest first. */
  values(): F[] {
    const out: F[] = [];
    for (const m of this.byBoot.values()) for (const f of m.values()) out.push(f);
    return out;
  }

  private newestBoot(): number | undefined {
    let last: number | undefined;
    for (const b of this.byBoot.keys()) last = b;
    return last;
  }
}
