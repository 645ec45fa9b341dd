/**
 * A stateful rxjs operator whose callbacks and timers may throw: a throw becomes the
 * stream's error (so the engine can isolate the rule) instead of an unhandled exception.
 */
import { Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';

export interface StageIo<O> {
  emit(o: O): void;
  /** Runs `fn` after `ms` on the rule's scheduler; errors reach the stream. */
  timer(ms: number, fn: () => void): Subscription;
  now(): number;
}

export interface StageHandlers<I> {
  next(v: I): void;
  complete?(): void;
}

export function stage<I, O>(
  scheduler: SchedulerLike,
  setup: (io: StageIo<O>) => StageHandlers<I>,
): OperatorFunction<I, O> {
  return (source) =>
    new Observable<O>((sub) => {
      const timers = new Set<Subscription>();
      const io: StageIo<O> = {
        emit: (o) => sub.next(o),
        now: () => scheduler.now(),
        timer(ms, fn) {
          const t = scheduler.schedule(
            () => {
              timers.delete(t);
              try {
                fn();
              } catch (e) {
                sub.error(e);
              }
            },
            Math.max(0, ms),
          );
          timers.add(t);
          return t;
        },
      };
      let h: StageHandlers<I>;
      try {
        h = setup(io);
      } catch (e) {
        sub.error(e);
        return;
      }
      const s = source.subscribe({
        next(v) {
          try {
            h.next(v);
          } catch (e) {
            sub.error(e);
          }
        },
        error: (e: unknown) => sub.error(e),
        complete() {
          try {
            h.complete?.();
            sub.complete();
          } catch (e) {
            sub.error(e);
          }
        },
      });
      return () => {
        s.unsubscribe();
        for (const t of timers) t.unsubscribe();
        timers.clear();
      };
    });
}
