/**
 * Cooldown and rate limit on firings. Both hold back rises; a fall passes only if the rise
 * before it passed, so onClear never runs for a firing that was suppressed.
 */
import type { SchedulerLike } from 'rxjs';
import type { Fire } from './sample.js';
import { type StageOperator, stage } from './stage.js';

/**
 * Passes a rise when `admit(now)` (made once per subscription) allows it; a fall passes only
 * if the rise before it passed.
 */
function gateRises(scheduler: SchedulerLike, makeAdmit: () => (now: number) => boolean): StageOperator<Fire, Fire> {
  return stage<Fire, Fire>(scheduler, (io) => {
    const admit = makeAdmit();
    let passed = false;
    return {
      next(f) {
        if (f.edge === 'fall') {
          if (passed) io.emit(f);
          passed = false;
          return;
        }
        passed = admit(io.now());
        if (passed) io.emit(f);
      },
    };
  });
}

export function cooldown(ms: number, scheduler: SchedulerLike): StageOperator<Fire, Fire> {
  return gateRises(scheduler, () => {
    let lastRise = -Infinity;
    return (now) => {
      if (now - lastRise < ms) return false;
      lastRise = now;
      return true;
    };
  });
}

export function rateLimit(max: number, perMs: number, scheduler: SchedulerLike): StageOperator<Fire, Fire> {
  return gateRises(scheduler, () => {
    const times: number[] = [];
    return (now) => {
      while (times.length > 0 && times[0]! <= now - perMs) times.shift();
      if (times.length >= max) return false;
      times.push(now);
      return true;
    };
  });
}
