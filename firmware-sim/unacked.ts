/**
 * A device's frames not acked yet, oldest first, found by (boot, seq) without hashing: the
 * frames in (boot, seq) order in an array, an acked one leaving a hole (its key stays, so the
 * order can be searched) until the holes at the front are cut off. Boots only grow and seq grows
 * within a boot, so a new frame goes at the end and the age order is the key order; PUBACKs come
 * mostly in that order too, so the oldest is the usual one to find. A Map per boot, as before,
 * cost a hash insert, a lookup and a delete per frame (bench/README.md, "firmware-sim").
 */
export class UnackedFrames<F extends { readonly boot: number; readonly seq: number }> {
  /** Oldest first from `head`; undefined where a frame has gone. */
  private items: (F | undefined)[] = [];
  private boots: number[] = [];
  private seqs: number[] = [];
  /** The first live frame (or `end`). */
  private head = 0;
  /** Entries in use: the arrays are kept at their size when emptied, not allocated again per frame. */
  private end = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(frame: F): void {
    const { boot, seq } = frame;
    const n = this.end;
    if (n === this.head || this.before(this.boots[n - 1]!, this.seqs[n - 1]!, boot, seq)) {
      this.items[n] = frame;
      this.boots[n] = boot;
      this.seqs[n] = seq;
      this.end = n + 1;
      this.count++;
      return;
    }
    const i = this.find(boot, seq);
    if (i >= 0) {
      if (this.items[i] === undefined) this.count++;
      this.items[i] = frame;
      return;
    }
    // Not newer than the newest (the contract says it does not happen): its place in the order.
    this.cut();
    let at = this.head;
    while (this.before(this.boots[at]!, this.seqs[at]!, boot, seq)) at++;
    this.items.splice(at, 0, frame);
    this.boots.splice(at, 0, boot);
    this.seqs.splice(at, 0, seq);
    this.end++;
    this.count++;
  }

  get(boot: number, seq: number): F | undefined {
    const i = this.find(boot, seq);
    return i < 0 ? undefined : this.items[i];
  }

  /** Removes a frame; false if it was not there. */
  delete(boot: number, seq: number): boolean {
    return this.take(boot, seq) !== undefined;
  }

  /** Removes a frame and returns it; undefined if it was not there. */
  take(boot: number, seq: number): F | undefined {
    const i = this.find(boot, seq);
    if (i < 0) return undefined;
    const f = this.items[i];
    if (f === undefined) return undefined;
    this.items[i] = undefined;
    this.count--;
    if (i === this.head) this.trim();
    return f;
  }

  /** Removes and returns the oldest frame. */
  shift(): F | undefined {
    const f = this.items[this.head];
    if (f === undefined) return undefined;
    this.items[this.head] = undefined;
    this.count--;
    this.trim();
    return f;
  }

  /** Oldest first. */
  values(): F[] {
    const out: F[] = [];
    for (let i = this.head; i < this.end; i++) {
      const f = this.items[i];
      if (f !== undefined) out.push(f);
    }
    return out;
  }

  /** (b1, s1) comes before (b2, s2). */
  private before(b1: number, s1: number, b2: number, s2: number): boolean {
    return b1 < b2 || (b1 === b2 && s1 < s2);
  }

  /** The index of key (boot, seq) from `head` on, hole or not; -1 if none. */
  private find(boot: number, seq: number): number {
    const { boots, seqs } = this;
    let lo = this.head;
    if (lo < this.end && boots[lo] === boot && seqs[lo] === seq) return lo; // the oldest: the usual ack
    let hi = this.end - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const b = boots[mid]!;
      const s = seqs[mid]!;
      if (b === boot && s === seq) return mid;
      if (this.before(b, s, boot, seq)) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Moves `head` past the holes; cuts them off once they are half the entries. */
  private trim(): void {
    const n = this.end;
    while (this.head < n && this.items[this.head] === undefined) this.head++;
    if (this.head === n) this.head = this.end = 0;
    else if (this.head >= 16 && this.head * 2 >= n) this.cut();
  }

  /** Drops the entries before `head` and any beyond `end`. */
  private cut(): void {
    for (const a of [this.items, this.boots, this.seqs] as unknown[][]) {
      a.length = this.end;
      a.splice(0, this.head);
    }
    this.end -= this.head;
    this.head = 0;
  }
}
