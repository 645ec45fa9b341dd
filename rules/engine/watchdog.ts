/**
 * Watchdog: a device silent for `silenceMs` (no matching frame) raises `silent`, its next
 * frame `resumed`. Watches the listed devices from the start, or (no list) every device once
 * heard. One timer per device, re-armed only when it fires, so a steady stream
 * costs no timer churn (this matters for replay speed).
 */
import type { OperatorFunction, SchedulerLike, Subscription } from 'rxjs';
import type { RuleFrame } from '../frame.js';
import { stage } from './stage.js';

export interface WatchEvent {
  readonly kind: 'silent' | 'resumed';
  readonly device: string;
  /** When it was last heard (or when watching began), ms. */
  readonly lastSeen: number;
  readonly frame?: RuleFrame;
}

interface Watched {
  lastSeen: number;
  silent: boolean;
  timer?: Subscription | undefined;
  frame?: RuleFrame;
}

export function watchdog(
  silenceMs: number,
  devices: readonly string[],
  scheduler: SchedulerLike,
): OperatorFunction<RuleFrame, WatchEvent> {
  return stage<RuleFrame, WatchEvent>(scheduler, (io) => {
    const watched = new Map<string, Watched>();
    const arm = (device: string, w: Watched): void => {
      w.timer = io.timer(w.lastSeen + silenceMs - io.now(), () => {
        w.timer = undefined;
        if (io.now() - w.lastSeen >= silenceMs) {
          w.silent = true;
          io.emit({ kind: 'silent', device, lastSeen: w.lastSeen, ...(w.frame && { frame: w.frame }) });
        } else arm(device, w);
      });
    };
    for (const d of devices) {
      const w: Watched = { lastSeen: io.now(), silent: false };
      watched.set(d, w);
      arm(d, w);
    }
    return {
      next(f) {
        let w = watched.get(f.device);
        if (!w) {
          if (devices.length > 0) return; // a list given: only those are watched
          w = { lastSeen: io.now(), silent: false };
          watched.set(f.device, w);
        }
        w.lastSeen = io.now();
        w.frame = f;
        if (w.silent) {
          w.silent = false;
          io.emit({ kind: 'resumed', device: f.device, lastSeen: w.lastSeen, frame: f });
        }
        if (!w.timer) arm(f.device, w);
      },
    };
  });
}
