/**
 * Schedulers for the engine: live rules run on rxjs's asyncScheduler (wall clock); a replay
 * runs the same compiled rules on a ReplayScheduler, a virtual clock moved forward to each
 * stored frame's time, firing every timer due on the way.
 */
import { VirtualAction, VirtualTimeScheduler } from 'rxjs';

export class ReplayScheduler extends VirtualTimeScheduler {
  constructor(start = 0) {
    super(VirtualAction, start);
    this.frame = start;
  }

  /** Runs every timer due at or before `t`, in order, and leaves the clock at `t`. */
  advanceTo(t: number): void {
    if (t < this.frame) return; // time never goes back; a late frame is handled "now"
    this.maxFrames = t;
    this.flush();
    this.frame = t;
  }

  /** Timers still pending. */
  get pending(): number {
    return this.actions.length;
  }
}
