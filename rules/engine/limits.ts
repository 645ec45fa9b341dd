/**
 * Cooldown and rate limit on firings. Both hold back rises; a fall passes only if the rise
 * before it passed, so onClear never runs for a firing that was suppressed.
 */
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import type { Fire } from './sample.js';
import { stage } from './stage.js';

export function cooldown(ms: number, scheduler: SchedulerLike): OperatorFunction<Fire, Fire> {
  return stage<Fire, Fire>(scheduler, (io) => {
    let lastRise = -Infinity;
    let passed = false;
    return {
      next(f) {
        if (f.edge === 'fall') {
          if (passed) io.emit(f);
          passed = false;
          return;
        }
        const now = io.now();
        passed = now - lastRise >= ms;
        if (passed) {
          lastRise = now;
          io.emit(f);
        }
      },
    };
  });
}

export function rateLimit(max: number, perMs: number, scheduler: SchedulerLike): OperatorFunction<Fire, Fire> {
  return stage<Fire, Fire>(scheduler, (io) => {
    const times: number[] = [];
    let passed = false;
    return {
      next(f) {
        if (f.edge === 'fall') {
          if (passed) io.emit(f);
          passed = false;
          return;
        }
        const now = io.now();
        while (times.length > 0 && times[0]! <= now - perMs) times.shift();
        passed = times.length < max;
        if (passed) {
          times.push(now);
          io.emit(f);
        }
      },
    };
  });
}
