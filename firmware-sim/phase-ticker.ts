/**
 * One timer for many devices that sample at the same rate, each at its own phase within the
 * period (fleet.ts): the period is cut into slots of about `slotMs`, and a device fires when its
 * slot comes round. A timer per device costs a timer list update and a callback per frame;
 * here a slot's devices fire from one callback. A device fires at most `slotMs` after its
 * phase; behind schedule it catches up at most one round (below).
 */
export class PhaseTicker<T> {
  private readonly slots: Set<T>[];
  private readonly slotLen: number;
  private t0 = 0;
  /** Slots fired so far since start (the next one to fire is `fired % slots.length`). */
  private fired = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    periodMs: number,
    slotMs: number,
    private readonly fire: (item: T) => void,
    /** The clock, ms (tests give their own). */
    private readonly now: () => number = () => performance.now(),
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
    if (this.running) return;
    this.running = true;
    this.t0 = this.now();
    this.fired = 0;
    this.immediate = setImmediate(() => this.run());
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
  }

  /**
   * One slot per call, so sockets are read between slots; behind schedule, the next slot
   * follows after the pending I/O, and a backlog of more than one round is dropped by moving
   * the schedule on, not by skipping slots: each device still fires once per round, the rounds
   * stretch, as a loaded process's timers would. (Skipping to the slot now due starved the same
   * slots round after round when each slot took a steady multiple of its time: in a fleet that
   * could not keep up, some devices never sampled.)
   */
  private run(): void {
    if (!this.running) return;
    const n = this.slots.length;
    let due = Math.floor((this.now() - this.t0) / this.slotLen) + 1;
    if (due - this.fired > n) {
      const late = due - this.fired - n;
      this.t0 += late * this.slotLen;
      due -= late;
    }
    if (this.fired < due) {
      for (const item of this.slots[this.fired % n]!) this.fire(item);
      this.fired++;
    }
    if (!this.running) return;
    if (this.fired < due) this.immediate = setImmediate(() => this.run());
    else {
      const next = this.t0 + this.fired * this.slotLen;
      this.timer = setTimeout(() => this.run(), Math.max(0, next - this.now()));
    }
  }
}
