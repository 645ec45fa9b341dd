/**
 * One timer for many devices that sample at the same rate, each at its own phase within the
 * period (fleet.ts): the period is cut into slots of about `slotMs`, and a device fires when its
 * slot comes round. A timer per device costs a timer list update and a callback per frame;
 * here a slot's devices fire from one callback. A device fires at most `slotMs` after its
 * phase, and a late timer catches up at most one period: no device fires twice in one round.
 */
export class PhaseTicker<T> {
  private readonly slots: Set<T>[];
  private readonly slotLen: number;
  private t0 = 0;
  /** Slots fired so far since start (the next one to fire is `fired % slots.length`). */
  private fired = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    periodMs: number,
    slotMs: number,
    private readonly fire: (item: T) => void,
  ) {
    const n = Math.max(1, Math.round(periodMs / slotMs));
    this.slots = Array.from({ length: n }, () => new Set<T>());
    this.slotLen = periodMs / n;
  }

  /** Fires `item` once a period, first at `phaseMs` (0 ≤ phaseMs < period) after start. */
  add(item: T, phaseMs: number): void {
    const k = Math.min(this.slots.length - 1, Math.max(0, Math.floor(phaseMs / this.slotLen)));
    this.slots[k]!.add(item);
  }

  remove(item: T): void {
    for (const s of this.slots) s.delete(item);
  }

  start(): void {
    if (this.timer) return;
    this.t0 = performance.now();
    this.fired = 0;
    this.timer = setTimeout(() => this.run(), 0);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private run(): void {
    const n = this.slots.length;
    // Slots whose start has passed; more than a round behind, the oldest are skipped.
    const due = Math.floor((performance.now() - this.t0) / this.slotLen) + 1;
    if (due - this.fired > n) this.fired = due - n;
    while (this.fired < due && this.timer) {
      for (const item of this.slots[this.fired % n]!) this.fire(item);
      this.fired++;
    }
    if (!this.timer) return;
    const next = this.t0 + this.fired * this.slotLen;
    this.timer = setTimeout(() => this.run(), Math.max(0, next - performance.now()));
  }
}
